using System.Text.Json.Nodes;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// A typed view over a Kubernetes object's JSON: the fields every part of Capstan reads (kind, name, namespace, the
/// <c>Kind/name</c> key of a release's objects, generation, labels), read in one place. <c>obj.Kube.Name</c> instead
/// of <c>obj["metadata"]!["name"]!.GetValue&lt;string&gt;()</c>. A view holds nothing but the node.
/// </summary>
public readonly struct KubeObject(JsonObject node)
{
    /// <summary>The object's JSON.</summary>
    public JsonObject Node { get; } = node;

    /// <summary><c>apiVersion</c>; every object Capstan renders, reads or records has one.</summary>
    public string ApiVersion => Required(Node["apiVersion"], "apiVersion");

    /// <summary><c>kind</c>.</summary>
    public string Kind => Required(Node["kind"], "kind");

    /// <summary><c>metadata.name</c>.</summary>
    public string Name => Required(Node["metadata"]?["name"], "metadata.name");

    /// <summary><c>metadata.namespace</c>; null for a cluster-scoped object (or one not yet placed).</summary>
    public string? Namespace => Node["metadata"]?["namespace"]?.GetValue<string>();

    /// <summary>The object's key among a release's objects: <c>Kind/name</c> (see <see cref="Planning.LiveRelease.Key"/>).</summary>
    public string Key => Planning.LiveRelease.Key(Kind, Name);

    /// <summary><c>metadata.generation</c>, or 0 when the server has not set one.</summary>
    public long Generation => JsonNumbers.Long(Node["metadata"]?["generation"]) ?? 0;

    /// <summary><c>metadata.labels</c>; empty when there are none.</summary>
    public IReadOnlyDictionary<string, string> Labels =>
        (Node["metadata"]?["labels"] as JsonObject)?.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>(), StringComparer.Ordinal)
        ?? new Dictionary<string, string>(StringComparer.Ordinal);

    private string Required(JsonNode? value, string field)
    {
        if (value?.GetValue<string>() is { } text)
        {
            return text;
        }

        var json = Node.ToJsonString();
        throw new InvalidOperationException($"a Kubernetes object without {field}: {json[..Math.Min(200, json.Length)]}");
    }
}

/// <summary>The <see cref="KubeObject"/> view of any object's JSON.</summary>
public static class KubeObjectView
{
    extension(JsonObject obj)
    {
        /// <summary>The typed view of this object: <c>obj.Kube.Kind</c>, <c>.Name</c>, <c>.Namespace</c>, <c>.Key</c>…</summary>
        public KubeObject Kube => new(obj);
    }
}
