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
        var resolved = new List<RenderedRelease>();
        foreach (var release in releases)
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
                catch (KubeNotFoundException)
                {
                    throw new UserInputException(
                        $"{release.Datacenter}/{release.Namespace}/{release.Release}: {obj.Kind} {obj.Metadata.Name} has apiVersion {obj.ApiVersion}, which the cluster at {client.Server} does not serve" +
                        " (for a custom resource, install its CustomResourceDefinition first)");
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
}
