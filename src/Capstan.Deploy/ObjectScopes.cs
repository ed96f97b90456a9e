using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>
/// Settles where the objects of <c>manifests</c> releases live by asking the cluster's discovery, not a list of kinds:
/// a namespaced kind (custom resources included) goes to the release's namespace, a cluster-scoped one has none.
/// Rendering without a cluster can only guess for kinds it does not know; deploying never guesses.
/// </summary>
public static class ObjectScopes
{
    /// <summary>The releases with every manifests object's namespace as the cluster's discovery says.</summary>
    public static async Task<IReadOnlyList<RenderedRelease>> ResolveAsync(IClusterClient client, IEnumerable<RenderedRelease> releases, CancellationToken cancellationToken)
    {
        var all = releases.ToList();
        var defined = Defined(all);
        var resolved = new List<RenderedRelease>();
        foreach (var release in all)
        {
            if (release.Kind != ReleaseKind.Manifests)
            {
                resolved.Add(release);
                continue;
            }

            var objects = new List<IKubeObject>(release.Objects.Count);
            foreach (var obj in release.Objects)
            {
                bool namespaced;
                try
                {
                    namespaced = await client.IsNamespacedAsync(obj.ApiVersion, obj.Kind, cancellationToken);
                }
                catch (KubeNotFoundException) when (defined.TryGetValue((obj.ApiVersion, obj.Kind), out var scope))
                {
                    // Not served yet: a definition this deploy applies serves it, with the scope it declares.
                    namespaced = scope;
                }
                catch (KubeNotFoundException)
                {
                    throw new UserInputException(
                        $"{release.Datacenter}/{release.Namespace}/{release.Release}: {obj.Kind} {obj.Metadata.Name} has apiVersion {obj.ApiVersion}, which the cluster at {client.Server} does not serve" +
                        " (for a custom resource, install its CustomResourceDefinition first, or deploy it with the resource)");
                }

                if (!namespaced && release.Environment is not null)
                {
                    // The renderer could only guess this kind's scope; the cluster says it lives outside any namespace.
                    throw new UserInputException(
                        $"environment {release.Environment}: {release.Ref.Namespace}/{release.Release} renders {obj.Kind} {obj.Metadata.Name}, which lives outside any namespace; an environment holds only objects in its own namespaces");
                }

                var ns = namespaced ? release.Namespace : null;
                objects.Add(obj.Metadata.Namespace == ns ? obj : obj.WithMetadata(obj.Metadata with { Namespace = ns }));
            }

            resolved.Add(release with { Objects = objects });
        }

        return resolved;
    }

    /// <summary>The custom resources the CustomResourceDefinitions among the releases define: (apiVersion, kind) → namespaced.</summary>
    public static Dictionary<(string ApiVersion, string Kind), bool> Defined(IEnumerable<RenderedRelease> releases)
    {
        var defined = new Dictionary<(string, string), bool>();
        foreach (var crd in releases.SelectMany(r => r.Objects).Where(o => o.Kind == "CustomResourceDefinition" && o.ApiVersion.StartsWith("apiextensions.k8s.io/", StringComparison.Ordinal)))
        {
            var spec = KubeSerializer.ToNode(crd)["spec"];
            if (Str(spec?["group"]) is not { } group || Str(spec?["names"]?["kind"]) is not { } kind)
            {
                continue;
            }

            foreach (var version in spec?["versions"] as System.Text.Json.Nodes.JsonArray ?? [])
            {
                if (Str(version?["name"]) is { } name)
                {
                    defined[($"{group}/{name}", kind)] = Str(spec?["scope"]) != "Cluster";
                }
            }
        }

        return defined;
    }

    private static string? Str(System.Text.Json.Nodes.JsonNode? node) =>
        node is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
}
