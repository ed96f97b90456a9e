using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;

namespace Capstan.Core.Environments;

/// <summary>
/// What turns production's rendering into an environment's: the environment's values files (layered after the
/// release layer), its own secrets files in place of production's secrets layer (production's secrets are never
/// read), canaries off unless asked, one replica per release, an image that wins over every layer, no fixed node
/// ports, and every object moved into the environment's namespaces.
/// </summary>
public sealed record EnvironmentOverlay(
    string Name,
    IReadOnlyList<string> ValuesFiles,
    IReadOnlyList<string> SecretsFiles,
    bool Canaries = false,
    string? Image = null)
{
    /// <summary>The environment's backends (its own, shared or explicitly production's); null when the farm declares none.</summary>
    public EnvironmentBackends? Backends { get; init; }

    /// <summary>The values the environment's backends generate for one release in one datacenter.</summary>
    public Yaml.ValueMap BackendValues(string dc, string ns) =>
        Environments.BackendValues.Generate(Backends!.Items.Select(i => i.Effective), dc, ns, Backends.Catalog.Datacenters);

    /// <summary>The label every object of an environment carries.</summary>
    public const string Label = "capstan.dev/environment";

    /// <summary>
    /// A rendered release as the environment runs it: in <c>NAME--namespace</c>, labelled, at one replica. An object
    /// that would live outside the environment's namespaces (a cluster-scoped one) is refused.
    /// </summary>
    public RenderedRelease Apply(RenderedRelease release)
    {
        var ns = EnvironmentNames.Namespace(Name, release.Namespace);
        var objects = new List<IKubeObject>(release.Objects.Count);
        foreach (var obj in release.Objects)
        {
            if (obj.Metadata.Namespace is null && obj.Kind != "Namespace")
            {
                throw new UserInputException(
                    $"environment {Name}: {release.Namespace}/{release.Release} renders {obj.Kind} {obj.Metadata.Name}, which lives outside any namespace; an environment holds only objects in its own namespaces");
            }

            var labels = (obj.Metadata.Labels ?? SortedMap.Empty).SetItem(Label, Name);
            var moved = obj.WithMetadata(obj.Metadata with
            {
                Name = obj.Kind == "Namespace" ? ns : obj.Metadata.Name,
                Namespace = obj.Kind == "Namespace" ? null : ns,
                Labels = labels,
            });
            objects.Add(moved switch
            {
                Deployment { Spec.Replicas: not null } deployment => deployment with { Spec = deployment.Spec with { Replicas = 1 } },

                // Production's fixed node ports are production's: an environment's Service gets one the cluster allocates.
                Service { Spec.Type: "NodePort" or "LoadBalancer" } service =>
                    service with { Spec = service.Spec with { Ports = [.. service.Spec.Ports.Select(p => p with { NodePort = null })] } },
                _ => moved,
            });
        }

        return release with { Namespace = ns, Objects = objects, Environment = Name };
    }
}
