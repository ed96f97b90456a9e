using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// Server-side apply's field ownership, simplified: a manager owns the leaf paths it set, where mappings are walked
/// key by key and lists are atomic (a list belongs wholly to the manager that set it; the real server merges lists of
/// containers, ports and env by key). Ownership is kept in <c>metadata.managedFields</c> in the FieldsV1 shape
/// (<c>{"f:spec": {"f:replicas": {}}}</c>).
/// </summary>
internal static class FieldOwnership
{
    private const char Sep = '\u001f';

    private static readonly HashSet<string> SystemMetadata = new(StringComparer.Ordinal)
    {
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp",
        "deletionGracePeriodSeconds", "selfLink",
    };

    /// <summary>The leaf paths an object sets, system fields and status excluded.</summary>
    public static HashSet<string> Paths(JsonObject obj, bool includeStatus)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in obj)
        {
            if (key is "apiVersion" or "kind" || (key == "status" && !includeStatus))
            {
                continue;
            }

            if (key == "metadata" && value is JsonObject meta)
            {
                foreach (var (mkey, mvalue) in meta)
                {
                    if (!SystemMetadata.Contains(mkey))
                    {
                        Walk(mvalue, "metadata" + Sep + mkey, paths);
                    }
                }

                continue;
            }

            Walk(value, key, paths);
        }

        return paths;
    }

    private static void Walk(JsonNode? node, string path, HashSet<string> paths)
    {
        if (node is JsonObject map && map.Count > 0)
        {
            foreach (var (key, value) in map)
            {
                Walk(value, path + Sep + key, paths);
            }
        }
        else
        {
            paths.Add(path);
        }
    }

    /// <summary>The node at a path, or null.</summary>
    public static JsonNode? Get(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split(Sep))
        {
            node = node is JsonObject map && map.TryGetPropertyValue(part, out var child) ? child : null;
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    /// <summary>True when the path exists (even holding null).</summary>
    public static bool Has(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split(Sep))
        {
            if (node is not JsonObject map || !map.TryGetPropertyValue(part, out var child))
            {
                return false;
            }

            node = child;
        }

        return true;
    }

    /// <summary>Removes the value at a path, and mappings the removal leaves empty.</summary>
    public static void Remove(JsonObject obj, string path)
    {
        var parts = path.Split(Sep);
        var chain = new List<JsonObject> { obj };
        for (var i = 0; i < parts.Length - 1; i++)
        {
            if (chain[^1][parts[i]] is not JsonObject next)
            {
                return;
            }

            chain.Add(next);
        }

        chain[^1].Remove(parts[^1]);
        for (var i = chain.Count - 1; i > 0; i--)
        {
            if (chain[i].Count == 0)
            {
                chain[i - 1].Remove(parts[i - 1]);
            }
        }
    }

    /// <summary>Deep-merges <paramref name="overlay"/> into <paramref name="target"/>: mappings key by key, anything else replaced.</summary>
    public static void Merge(JsonObject target, JsonObject overlay)
    {
        foreach (var (key, value) in overlay)
        {
            if (value is JsonObject child && target[key] is JsonObject existing && child.Count > 0)
            {
                Merge(existing, child);
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }

    /// <summary>A path as a user reads it: <c>.spec.replicas</c>.</summary>
    public static string Display(string path) => "." + path.Replace(Sep, '.');

    /// <summary>The managers and the paths each owns, from <c>metadata.managedFields</c>.</summary>
    public static List<(string Manager, string Operation, HashSet<string> Paths)> Read(JsonObject obj)
    {
        var result = new List<(string, string, HashSet<string>)>();
        foreach (var entry in obj["metadata"]?["managedFields"] as JsonArray ?? [])
        {
            var paths = new HashSet<string>(StringComparer.Ordinal);
            Decode(entry!["fieldsV1"] as JsonObject, string.Empty, paths);
            result.Add((entry["manager"]?.GetValue<string>() ?? "unknown", entry["operation"]?.GetValue<string>() ?? "Update", paths));
        }

        return result;
    }

    /// <summary>Writes ownership back into <c>metadata.managedFields</c>.</summary>
    public static void Write(JsonObject obj, IEnumerable<(string Manager, string Operation, HashSet<string> Paths)> owners, string apiVersion, string time)
    {
        var array = new JsonArray();
        foreach (var (manager, operation, paths) in owners.Where(o => o.Paths.Count > 0))
        {
            array.Add(new JsonObject
            {
                ["manager"] = manager,
                ["operation"] = operation,
                ["apiVersion"] = apiVersion,
                ["time"] = time,
                ["fieldsType"] = "FieldsV1",
                ["fieldsV1"] = Encode(paths),
            });
        }

        ((JsonObject)obj["metadata"]!)["managedFields"] = array;
    }

    private static JsonObject Encode(HashSet<string> paths)
    {
        var root = new JsonObject();
        foreach (var path in paths.Order(StringComparer.Ordinal))
        {
            var node = root;
            foreach (var part in path.Split(Sep))
            {
                var key = "f:" + part;
                if (node[key] is not JsonObject child)
                {
                    child = new JsonObject();
                    node[key] = child;
                }

                node = child;
            }
        }

        return root;
    }

    private static void Decode(JsonObject? fields, string prefix, HashSet<string> paths)
    {
        if (fields is null)
        {
            return;
        }

        foreach (var (key, value) in fields)
        {
            if (!key.StartsWith("f:", StringComparison.Ordinal))
            {
                continue;
            }

            var path = prefix.Length == 0 ? key[2..] : prefix + Sep + key[2..];
            if (value is JsonObject { Count: > 0 } child)
            {
                Decode(child, path, paths);
            }
            else
            {
                paths.Add(path);
            }
        }
    }
}
