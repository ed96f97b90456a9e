using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Rendering;

/// <summary>
/// Renders a <c>manifests</c> release: every <c>*.yaml</c> and <c>*.yml</c> document in its directory, kept as
/// written except that namespaced objects get the group's namespace and every object gets Capstan's labels.
/// </summary>
public static class ManifestsRenderer
{
    // Rendering without a cluster (capstan render) has only this list to go by; a deploy asks the cluster's discovery
    // instead (ObjectScopes), which also knows custom resources.
    private static readonly HashSet<string> ClusterScopedKinds = new(StringComparer.Ordinal)
    {
        "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass",
        "PersistentVolume", "IngressClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    };

    /// <summary>Renders the release's objects; throws <see cref="RepoValidationException"/> for a bad document.</summary>
    public static IReadOnlyList<IKubeObject> Render(ReleaseContext ctx, IRepoFiles files)
    {
        var diagnostics = new DiagnosticBag();
        var reader = new NodeReader(diagnostics);
        var dir = ctx.Release.ManifestsPath!;
        var paths = files.ListFiles(dir, "*.yaml").Concat(files.ListFiles(dir, "*.yml")).Order(StringComparer.Ordinal);
        var objects = new List<IKubeObject>();
        foreach (var path in paths)
        {
            foreach (var doc in YamlReader.ReadAll(files.ReadText(path), path, diagnostics))
            {
                if (doc is null)
                {
                    continue;
                }

                var map = reader.Map(doc, "a manifest");
                if (map is null)
                {
                    continue;
                }

                var apiVersion = reader.String(map["apiVersion"], "apiVersion");
                var kind = reader.String(map["kind"], "kind");
                var meta = reader.Map(map["metadata"], "metadata");
                var name = reader.String(meta?["name"], "metadata.name");
                foreach (var key in new[] { "apiVersion", "kind", "metadata" }.Where(k => map[k] is null))
                {
                    reader.Missing(map, key, "a manifest");
                }

                if (meta is not null && meta["name"] is null)
                {
                    reader.Missing(meta, "name", "metadata");
                }

                if (apiVersion is null || kind is null || meta is null || name is null)
                {
                    continue;
                }

                var clusterScoped = ClusterScopedKinds.Contains(kind);
                var why = KubeNames.CheckDnsSubdomain(name);
                if (why is not null)
                {
                    diagnostics.Error(meta["name"]!.Location, $"{kind} name '{name}' {why}");
                    continue;
                }

                var ns = reader.String(meta["namespace"], "metadata.namespace");
                if (ns is not null && ns != ctx.Namespace && !clusterScoped)
                {
                    diagnostics.Error(meta["namespace"]!.Location, $"{kind} {name} is in namespace '{ns}', but release {ctx.Namespace}/{ctx.Release.Name} deploys to '{ctx.Namespace}'");
                    continue;
                }

                var labels = new List<KeyValuePair<string, string>>();
                foreach (var e in reader.Map(meta["labels"], "metadata.labels")?.Entries ?? [])
                {
                    if (reader.ScalarText(e.Value, $"label {e.Key}") is { } value)
                    {
                        labels.Add(KeyValuePair.Create(e.Key, value));
                    }
                }

                var annotations = new List<KeyValuePair<string, string>>();
                foreach (var e in reader.Map(meta["annotations"], "metadata.annotations")?.Entries ?? [])
                {
                    if (reader.ScalarText(e.Value, $"annotation {e.Key}") is { } value)
                    {
                        annotations.Add(KeyValuePair.Create(e.Key, value));
                    }
                }

                var metadata = new ObjectMeta(
                    name,
                    clusterScoped ? null : ctx.Namespace,
                    labels.Count > 0 ? SortedMap.From(labels) : null,
                    annotations.Count > 0 ? SortedMap.From(annotations) : null);
                objects.Add(new UntypedObject(apiVersion, kind, metadata, (JsonObject)ValueNodeJson.ToJson(map)!));
            }
        }

        if (diagnostics.HasErrors)
        {
            throw new RepoValidationException(diagnostics.Sorted());
        }

        return objects;
    }
}
