using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Images;

/// <summary>
/// The JSON documents of an image (config, manifest, index) as Capstan writes them: one way to build a manifest, and
/// bytes without <c>\u002B</c> for '+' (valid JSON either way, but not what other tools write or what people grep for,
/// in media types such as <c>tar+gzip</c>).
/// </summary>
public static class OciJson
{
    private static readonly System.Text.Json.JsonSerializerOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The bytes of a document, as stored and pushed (its digest is of these).</summary>
    public static byte[] Bytes(JsonNode document) => System.Text.Encoding.UTF8.GetBytes(Text(document));

    /// <summary>The text of a document (the layout's own <c>index.json</c>).</summary>
    public static string Text(JsonNode document) => document.ToJsonString(Options);

    /// <summary>An image manifest: the config, the layers in order, and the annotations.</summary>
    public static JsonObject ImageManifest(Descriptor config, IEnumerable<JsonNode> layers, JsonObject annotations) => new()
    {
        ["schemaVersion"] = 2,
        ["mediaType"] = MediaTypes.Manifest,
        ["config"] = config.ToJson(),
        ["layers"] = new JsonArray([.. layers]),
        ["annotations"] = annotations,
    };
}

/// <summary>The OCI media types Capstan writes and reads.</summary>
public static class MediaTypes
{
    /// <summary>An image manifest.</summary>
    public const string Manifest = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>An image index.</summary>
    public const string Index = "application/vnd.oci.image.index.v1+json";

    /// <summary>An image configuration.</summary>
    public const string Config = "application/vnd.oci.image.config.v1+json";

    /// <summary>A gzip-compressed layer.</summary>
    public const string LayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>A zstd-compressed layer (OCI image spec 1.1).</summary>
    public const string LayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";

    /// <summary>The layer media type of a compression (<c>gzip</c> or <c>zstd</c>).</summary>
    public static string Layer(string compression) => compression == "zstd" ? LayerZstd : LayerGzip;

    /// <summary>An uncompressed layer.</summary>
    public const string LayerTar = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>Docker's manifest list, read when pulling.</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>Docker's manifest, read when pulling.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

    /// <summary>What a manifest request accepts.</summary>
    public static readonly string[] ManifestAccept = [Manifest, Index, DockerManifest, DockerManifestList];

    /// <summary>True for index-like media types.</summary>
    public static bool IsIndex(string? mediaType) => mediaType is Index or DockerManifestList;
}

/// <summary>An OCI content descriptor.</summary>
public sealed record Descriptor(string MediaType, string Digest, long Size, IReadOnlyDictionary<string, string>? Annotations = null)
{
    /// <summary>As JSON.</summary>
    public JsonObject ToJson()
    {
        var node = new JsonObject { ["mediaType"] = MediaType, ["digest"] = Digest, ["size"] = Size };
        if (Annotations is { Count: > 0 })
        {
            node["annotations"] = new JsonObject(Annotations.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value)));
        }

        return node;
    }

    /// <summary>From JSON.</summary>
    public static Descriptor FromJson(JsonNode node) => new(
        node["mediaType"]?.GetValue<string>() ?? MediaTypes.Manifest,
        node["digest"]!.GetValue<string>(),
        node["size"]!.GetValue<long>(),
        (node["annotations"] as JsonObject)?.ToDictionary(a => a.Key, a => a.Value!.GetValue<string>()));
}

/// <summary>sha256 digests in the <c>sha256:hex</c> form.</summary>
public static class Digests
{
    /// <summary>The digest of bytes.</summary>
    public static string Of(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The digest of a finished incremental hash.</summary>
    public static string Of(IncrementalHash hash) => "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());

    /// <summary>True for <c>sha256:</c> followed by 64 lowercase hex digits.</summary>
    public static bool IsValid(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.Length == 71 && digest[7..].All(char.IsAsciiHexDigitLower);

    /// <summary>The hex part; throws for anything that is not a sha256 digest (so it can never name a path outside a store).</summary>
    public static string Hex(string digest)
    {
        if (!IsValid(digest))
        {
            throw new ImageException($"'{digest}' is not a sha256 digest");
        }

        return digest[7..];
    }
}

/// <summary>A problem with an image, a store or a transfer that the user can act on.</summary>
public class ImageException(string message, Exception? inner = null, RefusalKind kind = RefusalKind.Failure) : CapstanException(kind, message, inner);

/// <summary>An image reference, tag or digest that is not written right (a user mistake: nothing was done).</summary>
public sealed class ImageReferenceException(string message) : ImageException(message, null, RefusalKind.UserError);

/// <summary>A prep that would overwrite files it did not write (a user decision: nothing was done).</summary>
public sealed class ImageForeignFilesException(string message) : ImageException(message, null, RefusalKind.UserError);

/// <summary>An image that the named store does not hold (a user mistake, like a mistyped tag: nothing was done).</summary>
public sealed class ImageNotFoundException(string message) : ImageException(message, null, RefusalKind.UserError);

/// <summary>A blob whose content does not match its digest.</summary>
public sealed class DigestMismatchException(string what, string expected, string actual)
    : ImageException($"{what}: content does not match its digest (expected {expected}, got {actual}); refusing to use it");
