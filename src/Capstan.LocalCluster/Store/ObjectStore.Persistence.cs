using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <content>Loading from and writing to the cluster database.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// Loads the objects of <paramref name="database"/> into an empty store and writes every later change to it. A
    /// cluster kept in the older <c>objects.json</c> snapshot (<paramref name="legacySnapshot"/>) is imported once.
    /// </summary>
    internal void Attach(ClusterDatabase database, string? legacySnapshot)
    {
        lock (_lock)
        {
            if (database.IsEmpty && legacySnapshot is not null)
            {
                var snapshot = JsonNode.Parse(legacySnapshot)!.AsObject();
                var rv = JsonNumber.Long(snapshot["resourceVersion"]) ?? 1;
                var imported = (snapshot["objects"] as JsonArray ?? []).OfType<JsonObject>()
                    .Select(o => (Type: TypeOf(o), Object: o)).Where(o => o.Type is not null)
                    .Select(o => Key(o.Type!, o.Object["metadata"]?["namespace"]?.GetValue<string>(), o.Object["metadata"]!["name"]!.GetValue<string>()) is var key
                        ? (key.Item1, key.Item2, key.Item3, JsonNumber.Long(o.Object["metadata"]?["resourceVersion"]) ?? rv, o.Object)
                        : default);
                database.PutAll(imported, rv);
            }

            var (objects, resourceVersion) = database.Load();
            _resourceVersion = resourceVersion;
            _oldestKept = _resourceVersion + 1;
            foreach (var obj in objects)
            {
                if (TypeOf(obj) is { } type)
                {
                    var key = Key(type, obj["metadata"]?["namespace"]?.GetValue<string>(), obj["metadata"]!["name"]!.GetValue<string>());
                    _objects[key] = obj;
                    Index(key, obj);
                }
            }

            Database = database;
        }
    }

    private static ResourceType? TypeOf(JsonObject obj) =>
        ResourceTypes.All.FirstOrDefault(t => t.ApiVersion == obj["apiVersion"]?.GetValue<string>() && t.Kind == obj["kind"]?.GetValue<string>());
}
