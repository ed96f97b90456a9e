using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// Server-side apply's field ownership, as the real server keeps it in <c>metadata.managedFields</c> (FieldsV1): a
/// path is a chain of elements — <c>f:NAME</c> for a field, <c>k:{"name":"main"}</c> for an item of a map list (by its
/// key fields), <c>v:"value"</c> for an item of a set, and <c>.</c> for a list item itself. Lists follow
/// <see cref="ListSchema"/>: map lists and sets are owned and merged item by item, atomic lists as a whole.
/// Internally a path is its elements joined by U+001F.
/// </summary>
internal static class FieldOwnership
{
    private const char Sep = '\u001f';
    private const string Self = ".";

    private static readonly HashSet<string> SystemMetadata = new(StringComparer.Ordinal)
    {
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp",
        "deletionGracePeriodSeconds", "selfLink",
    };

    /// <summary>The leaf paths an object sets, system fields and status excluded.</summary>
    public static HashSet<string> Paths(JsonObject obj, bool includeStatus)
    {
        var kind = obj["kind"]?.GetValue<string>() ?? string.Empty;
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
                        Walk(kind, mvalue, ["metadata", mkey], "f:metadata" + Sep + "f:" + mkey, paths);
                    }
                }

                continue;
            }

            Walk(kind, value, [key], "f:" + key, paths);
        }

        return paths;
    }

    private static void Walk(string kind, JsonNode? node, List<string> fields, string path, HashSet<string> paths)
    {
        switch (node)
        {
            case JsonObject { Count: > 0 } map:
                foreach (var (key, value) in map)
                {
                    Walk(kind, value, [.. fields, key], path + Sep + "f:" + key, paths);
                }

                break;
            case JsonArray list when ListSchema.For(kind, fields) is var (type, keys) && type != ListType.Atomic:
                foreach (var item in list)
                {
                    var itemPath = path + Sep + ItemElement(item, type, keys);
                    if (type == ListType.Set)
                    {
                        paths.Add(itemPath);
                        continue;
                    }

                    paths.Add(itemPath + Sep + Self);
                    foreach (var (key, value) in item as JsonObject ?? [])
                    {
                        Walk(kind, value, [.. fields, key], itemPath + Sep + "f:" + key, paths);
                    }
                }

                break;
            default:
                paths.Add(path);
                break;
        }
    }

    /// <summary>The element naming a list item: <c>k:{…}</c> with the key fields sorted by name, or <c>v:value</c>.</summary>
    private static string ItemElement(JsonNode? item, ListType type, string[] keys)
    {
        if (type == ListType.Set)
        {
            return "v:" + (item?.ToJsonString() ?? "null");
        }

        var key = new JsonObject();
        foreach (var field in keys.Order(StringComparer.Ordinal))
        {
            if (KeyValue(item, field) is { } value)
            {
                key[field] = value.DeepClone();
            }
        }

        return "k:" + key.ToJsonString();
    }

    /// <summary>A key field of a list item, with the schema's default for a key the item leaves out.</summary>
    private static JsonNode? KeyValue(JsonNode? item, string field) =>
        item?[field] ?? (field == "protocol" ? JsonValue.Create("TCP") : null);

    private static bool ItemMatches(JsonNode? item, string element)
    {
        if (element.StartsWith("v:", StringComparison.Ordinal))
        {
            return (item?.ToJsonString() ?? "null") == element[2..];
        }

        return ParsedKey(element).All(kv => JsonNode.DeepEquals(KeyValue(item, kv.Key), kv.Value));
    }

    /// <summary>A <c>k:{…}</c> element's key fields, parsed once (paths are walked many times per apply).</summary>
    private static IReadOnlyList<KeyValuePair<string, JsonNode?>> ParsedKey(string element)
    {
        if (KeyCache.TryGetValue(element, out var key))
        {
            return key;
        }

        if (KeyCache.Count > 50_000)
        {
            KeyCache.Clear();
        }

        key = [.. (JsonNode.Parse(element[2..]) as JsonObject ?? []).Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))];
        KeyCache[element] = key;
        return key;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<KeyValuePair<string, JsonNode?>>> KeyCache = new(StringComparer.Ordinal);

    /// <summary>The node at a path (a list item for <c>k:</c>/<c>v:</c>, the item itself for <c>.</c>), or null.</summary>
    public static JsonNode? Get(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var element in path.Split(Sep))
        {
            node = Step(node, element);
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    private static JsonNode? Step(JsonNode? node, string element) => element switch
    {
        Self => node,
        _ when element.StartsWith("f:", StringComparison.Ordinal) => node is JsonObject map && map.TryGetPropertyValue(element[2..], out var child) ? child : null,
        _ => (node as JsonArray)?.FirstOrDefault(item => ItemMatches(item, element)),
    };

    /// <summary>
    /// Removes what a path names: a field, a set value, or (for <c>.</c>) a whole list item; mappings the removal leaves
    /// empty go too.
    /// </summary>
    public static void Remove(JsonObject obj, string path)
    {
        var elements = path.Split(Sep);
        if (elements[^1] == Self)
        {
            elements = elements[..^1];
        }

        var chain = new List<JsonNode> { obj };
        for (var i = 0; i < elements.Length - 1; i++)
        {
            if (Step(chain[^1], elements[i]) is not { } next)
            {
                return;
            }

            chain.Add(next);
        }

        var last = elements[^1];
        switch (chain[^1])
        {
            case JsonObject map when last.StartsWith("f:", StringComparison.Ordinal):
                map.Remove(last[2..]);
                break;
            case JsonArray list:
                foreach (var item in list.Where(item => ItemMatches(item, last)).ToList())
                {
                    list.Remove(item);
                }

                break;
        }

        for (var i = chain.Count - 1; i > 0; i--)
        {
            var empty = chain[i] is JsonObject { Count: 0 } || chain[i] is JsonArray { Count: 0 };
            if (!empty || !elements[i - 1].StartsWith("f:", StringComparison.Ordinal) || chain[i - 1] is not JsonObject parent)
            {
                break;
            }

            parent.Remove(elements[i - 1][2..]);
        }
    }

    /// <summary>
    /// Deep-merges an applied configuration into <paramref name="target"/>: mappings key by key, map lists item by item
    /// (by key; new items appended), sets by value, anything else replaced.
    /// </summary>
    public static void Merge(string kind, JsonObject target, JsonObject overlay) => MergeMap(kind, target, overlay, []);

    private static void MergeMap(string kind, JsonObject target, JsonObject overlay, List<string> fields)
    {
        foreach (var (key, value) in overlay)
        {
            var childFields = new List<string>(fields) { key };
            if (value is JsonObject child && target[key] is JsonObject existing && child.Count > 0)
            {
                MergeMap(kind, existing, child, childFields);
            }
            else if (value is JsonArray list && target[key] is JsonArray existingList && ListSchema.For(kind, childFields) is var (type, keys) && type != ListType.Atomic)
            {
                MergeList(kind, existingList, list, type, keys, childFields);
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }

    private static void MergeList(string kind, JsonArray target, JsonArray overlay, ListType type, string[] keys, List<string> fields)
    {
        foreach (var item in overlay)
        {
            var element = ItemElement(item, type, keys);
            var existing = target.FirstOrDefault(t => ItemMatches(t, element));
            if (existing is null)
            {
                target.Add(item?.DeepClone());
            }
            else if (type == ListType.Map && existing is JsonObject existingItem && item is JsonObject itemMap)
            {
                MergeMap(kind, existingItem, itemMap, fields);
            }
        }
    }

    /// <summary>
    /// A path as the real server prints it in a conflict:
    /// <c>.spec.template.spec.containers[name="main"].image</c>, <c>.metadata.finalizers[="x"]</c>.
    /// </summary>
    public static string Display(string path)
    {
        var sb = new StringBuilder();
        foreach (var element in path.Split(Sep))
        {
            if (element == Self)
            {
                continue;
            }

            if (element.StartsWith("f:", StringComparison.Ordinal))
            {
                sb.Append('.').Append(element[2..]);
            }
            else if (element.StartsWith("v:", StringComparison.Ordinal))
            {
                sb.Append("[=").Append(element[2..]).Append(']');
            }
            else
            {
                var key = JsonNode.Parse(element[2..]) as JsonObject ?? [];
                sb.Append('[').Append(string.Join(",", key.Select(kv => $"{kv.Key}={kv.Value?.ToJsonString()}"))).Append(']');
            }
        }

        return sb.ToString();
    }

    /// <summary>True when the path is a key field of the list item it sits in (kept while the item stays).</summary>
    public static bool IsItemKey(string path)
    {
        var elements = path.Split(Sep);
        return elements.Length >= 2 && elements[^2].StartsWith("k:", StringComparison.Ordinal) && elements[^1].StartsWith("f:", StringComparison.Ordinal)
               && (JsonNode.Parse(elements[^2][2..]) as JsonObject)?.ContainsKey(elements[^1][2..]) == true;
    }

    /// <summary>True when the path names a list item's own presence (<c>.</c>) rather than a value.</summary>
    public static bool IsItemPresence(string path) => path.EndsWith(Sep + Self, StringComparison.Ordinal);

    /// <summary>The path of the list item a presence path (or any path inside an item) belongs to, or null.</summary>
    public static string? ItemOf(string path)
    {
        var elements = path.Split(Sep);
        for (var i = elements.Length - 1; i >= 0; i--)
        {
            if (elements[i].StartsWith("k:", StringComparison.Ordinal))
            {
                return string.Join(Sep, elements[..(i + 1)]);
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="path"/> lies inside (or is) the item path <paramref name="item"/>.</summary>
    public static bool Within(string path, string item) => path == item || path.StartsWith(item + Sep, StringComparison.Ordinal);

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
            foreach (var element in path.Split(Sep))
            {
                if (node[element] is not JsonObject child)
                {
                    child = new JsonObject();
                    node[element] = child;
                }

                node = child;
            }
        }

        return root;
    }

    private static void Decode(JsonObject? fields, string prefix, HashSet<string> paths)
    {
        foreach (var (key, value) in fields ?? [])
        {
            if (key is not Self && !key.StartsWith("f:", StringComparison.Ordinal) && !key.StartsWith("k:", StringComparison.Ordinal) && !key.StartsWith("v:", StringComparison.Ordinal))
            {
                continue;
            }

            var path = prefix.Length == 0 ? key : prefix + Sep + key;
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

    /// <summary>Whether two values at a path are the same (list items compare whole; presence is always the same).</summary>
    public static bool SameValue(JsonObject a, JsonObject b, string path) =>
        IsItemPresence(path) ? (Get(a, path) is null) == (Get(b, path) is null) : JsonNode.DeepEquals(Get(a, path), Get(b, path));

    /// <summary>A JSON value as a key element shows it (for messages).</summary>
    public static string Show(JsonNode? node) => node?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null";
}
