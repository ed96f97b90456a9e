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

    /// <summary>
    /// The class's template of a web-facing group's URL host (<c>{name}</c> and <c>{group}</c> to expand); null for
    /// none. The release with the group's TLS Service gets an Ingress for it.
    /// </summary>
    public string? HostTemplate { get; init; }

    /// <summary>The host of a group's URL, or null when the environment has none.</summary>
    public string? Host(string group) => HostTemplate is null ? null : UrlHost(HostTemplate, Name, group);

    /// <summary>A URL host from a class's template.</summary>
    public static string UrlHost(string template, string environment, string group) =>
        template.Replace("{name}", environment, StringComparison.Ordinal).Replace("{group}", group, StringComparison.Ordinal);

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

        // The URL of a web-facing group: an Ingress to the TLS Service of the release that has one.
        if (objects.OfType<Service>().FirstOrDefault(svc => svc.Metadata.Name.EndsWith("-tls-service", StringComparison.Ordinal)) is { } tls
            && Host(release.Namespace) is { } host)
        {
            objects.Add(Ingress(tls, host));
        }

        return release with { Namespace = ns, Objects = objects, Environment = Name };
    }

    private static UntypedObject Ingress(Service tls, string host)
    {
        var port = tls.Spec.Ports[0].Port;
        var body = new System.Text.Json.Nodes.JsonObject
        {
            ["spec"] = new System.Text.Json.Nodes.JsonObject
            {
                ["rules"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
                {
                    ["host"] = host,
                    ["http"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["paths"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
                        {
                            ["path"] = "/",
                            ["pathType"] = "Prefix",
                            ["backend"] = new System.Text.Json.Nodes.JsonObject
                            {
                                ["service"] = new System.Text.Json.Nodes.JsonObject { ["name"] = tls.Metadata.Name, ["port"] = new System.Text.Json.Nodes.JsonObject { ["number"] = port } },
                            },
                        }),
                    },
                }),
            },
        };
        var name = tls.Metadata.Name[..^"-tls-service".Length] + "-url";
        return new UntypedObject("networking.k8s.io/v1", "Ingress", tls.Metadata with { Name = name, Annotations = null }, body);
    }
}
