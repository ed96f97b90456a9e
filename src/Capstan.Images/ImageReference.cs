using System.Net;

namespace Capstan.Images;

/// <summary>
/// Where an image is: <c>oci-layout://PATH[:TAG|@DIGEST]</c>, or a registry repository
/// <c>[http://|https://]HOST[:PORT]/NAME[:TAG|@DIGEST]</c> (https unless written http://, which only loopback may use).
/// </summary>
public sealed record ImageReference(string? LayoutPath, Uri? Registry, string? Repository, string? Tag, string? Digest)
{
    /// <summary>True for an OCI layout.</summary>
    public bool IsLayout => LayoutPath is not null;

    /// <summary>The tag or digest to resolve.</summary>
    public string Reference => Digest ?? Tag ?? "latest";

    /// <summary>The same place with another tag.</summary>
    public ImageReference WithTag(string tag) => this with { Tag = tag, Digest = null };

    /// <summary>Parses a reference; relative layout paths are resolved against <paramref name="baseDirectory"/>.</summary>
    public static ImageReference Parse(string text, string baseDirectory)
    {
        if (text.StartsWith("oci-layout://", StringComparison.Ordinal))
        {
            var rest = text["oci-layout://".Length..];
            var (path, tag, digest) = SplitReference(rest);
            if (path.Length == 0)
            {
                throw new ImageReferenceException($"'{text}' names no directory (oci-layout://PATH[:TAG])");
            }

            return new ImageReference(Path.GetFullPath(Path.Combine(baseDirectory, path)), null, null, tag, digest);
        }

        var scheme = "https";
        var body = text;
        if (text.StartsWith("https://", StringComparison.Ordinal))
        {
            body = text["https://".Length..];
        }
        else if (text.StartsWith("http://", StringComparison.Ordinal))
        {
            scheme = "http";
            body = text["http://".Length..];
        }
        else if (text.Contains("://", StringComparison.Ordinal))
        {
            throw new ImageReferenceException($"'{text}': unknown image store (use oci-layout://PATH, https://HOST/NAME or http://127.0.0.1:PORT/NAME)");
        }

        var slash = body.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == body.Length - 1)
        {
            throw new ImageReferenceException($"'{text}' must name a registry and a repository (HOST[:PORT]/NAME[:TAG])");
        }

        var host = body[..slash];
        var (repository, repoTag, repoDigest) = SplitReference(body[(slash + 1)..]);
        if (!repository.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-' or '/'))
        {
            throw new ImageReferenceException($"'{repository}' is not a valid repository name (lowercase letters, digits, '.', '_', '-', '/')");
        }

        var registry = new Uri($"{scheme}://{host}/");
        if (scheme == "http" && !IsLoopback(registry))
        {
            throw new ImageReferenceException($"'{text}': plain http is only allowed to a loopback registry; use https://");
        }

        return new ImageReference(null, registry, repository, repoTag, repoDigest);
    }

    /// <inheritdoc/>
    public override string ToString() => IsLayout
        ? $"oci-layout://{LayoutPath}{Suffix()}"
        : $"{(Registry!.Scheme == "http" ? "http://" : string.Empty)}{Registry.Authority}/{Repository}{Suffix()}";

    /// <summary>The place without tag or digest.</summary>
    public string Store => IsLayout ? $"oci-layout://{LayoutPath}" : $"{(Registry!.Scheme == "http" ? "http://" : string.Empty)}{Registry.Authority}/{Repository}";

    private string Suffix() => Digest is not null ? "@" + Digest : Tag is not null ? ":" + Tag : string.Empty;

    private static (string Path, string? Tag, string? Digest) SplitReference(string text)
    {
        var at = text.LastIndexOf('@');
        if (at >= 0)
        {
            var digest = text[(at + 1)..];
            if (!Digests.IsValid(digest))
            {
                throw new ImageReferenceException($"'{digest}' is not a sha256 digest (sha256: and 64 lowercase hex digits)");
            }

            var (path, tag, _) = SplitReference(text[..at]);
            return (path, tag, digest);
        }

        var colon = text.LastIndexOf(':');
        if (colon > text.LastIndexOf('/'))
        {
            var tag = text[(colon + 1)..];
            ImageBuilder.CheckTag(tag);
            return (text[..colon], tag, null);
        }

        return (text, null, null);
    }

    private static bool IsLoopback(Uri uri) =>
        uri.Host == "localhost" || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
