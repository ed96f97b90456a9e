using Capstan.Core.Config;
using Capstan.Core.Train;
using Capstan.Images;
using Capstan.Kubernetes;

namespace Capstan.Deploy.Train;

/// <summary>One MediaWiki image the farm's pods run: how many run it, and the wikiversions it carries (null when it could not be read).</summary>
public sealed record RunningImage(string Digest, int Pods, WikiVersions? Versions);

/// <summary>
/// What the pods serve: the MediaWiki images the farm's pods run (by digest) and the wikiversions each carries, read
/// from the image itself in the farm's OCI layout.
/// </summary>
public sealed record TrainLive(IReadOnlyList<RunningImage> Images)
{
    /// <summary>True when every pod serves the same wikiversions (one image, or several carrying the same file).</summary>
    public bool OneWikiVersions => Images.Select(i => i.Versions?.Write() ?? i.Digest).Distinct(StringComparer.Ordinal).Count() <= 1;

    /// <summary>
    /// Reads the pods of the farm's MediaWiki groups in every datacenter and the wikiversions of each image they run.
    /// </summary>
    public static async Task<TrainLive> ReadAsync(FarmModel model, IClusters clusters, CancellationToken cancellationToken)
    {
        var settings = model.Train;
        var inImage = settings is null ? null : $"{model.Image.Root}/{settings.WikiVersions}";
        var namespaces = model.Groups.Where(g => g.Releases.Any(r => r.Kind == ReleaseKind.MediaWiki)).Select(model.LiveNamespace).ToList();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var dc in clusters.Datacenters)
        {
            foreach (var ns in namespaces)
            {
                var pods = await clusters[dc].ListAsync("v1", "Pod", ns, null, cancellationToken);
                foreach (var pod in pods.Items)
                {
                    if (MediaWikiDigest(pod) is { } digest)
                    {
                        counts[digest] = counts.GetValueOrDefault(digest) + 1;
                    }
                }
            }
        }

        var images = new List<RunningImage>();
        foreach (var (digest, pods) in counts.OrderByDescending(c => c.Value))
        {
            WikiVersions? versions = null;
            if (inImage is not null && model.RegistryLayout is { } layout
                && await ImageFiles.ReadTextAsync(new OciLayout(layout), digest, inImage, cancellationToken) is { } text)
            {
                try
                {
                    versions = WikiVersions.Parse(text, $"{inImage} in {digest}");
                }
                catch (Capstan.Core.Diagnostics.UserInputException)
                {
                    // An image whose wikiversions cannot be read says nothing about what its pods serve: unknown.
                }
            }

            images.Add(new RunningImage(digest, pods, versions));
        }

        return new TrainLive(images);
    }

    /// <summary>
    /// The digest of the MediaWiki image a pod's containers run (<c>…/NAME:TAG@sha256:…</c>); the whole reference of one
    /// named by tag alone (its wikiversions cannot be known); null for a pod without MediaWiki.
    /// </summary>
    private static string? MediaWikiDigest(System.Text.Json.Nodes.JsonObject pod)
    {
        // The MediaWiki container is the one the renderer names PREFIX-app (MediaWikiPod).
        var containers = pod["spec"]?["containers"]?.AsArray() ?? [];
        foreach (var container in containers)
        {
            if (container?["name"]?.GetValue<string>() is { } name && name.EndsWith("-app", StringComparison.Ordinal)
                && container["image"]?.GetValue<string>() is { Length: > 0 } image)
            {
                var at = image.IndexOf('@', StringComparison.Ordinal);
                return at >= 0 ? image[(at + 1)..] : image;
            }
        }

        return null;
    }
}
