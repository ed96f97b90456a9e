using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// Strategic merge patch (what <c>kubectl apply</c> client-side, <c>edit</c>, <c>set env</c> and <c>scale</c> send),
/// driven by the same list table as server-side apply (<see cref="ListSchema"/>): mappings merge key by key, map lists
/// item by item by their merge key (<c>$patch: delete</c> removes an item, <c>$patch: replace</c> replaces the list or
/// mapping), sets by value (<c>$deleteFromPrimitiveList/FIELD</c> removes values), anything else is replaced, and
/// <c>null</c> removes a key. <c>$setElementOrder/FIELD</c> and <c>$retainKeys</c> are understood; any other
/// directive is refused (400), never silently treated as a plain merge patch.
/// </summary>
internal static class StrategicMergePatch
{
    /// <summary>Applies <paramref name="patch"/> to <paramref name="target"/> (changed in place).</summary>
    public static void Apply(string kind, JsonObject target, JsonObject patch) => MergeMap(kind, target, patch, []);

    private static void MergeMap(string kind, JsonObject target, JsonObject patch, List<string> fields)
    {
        if (patch["$retainKeys"] is JsonArray retain)
        {
            var keep = retain.Select(k => k?.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
            foreach (var key in target.Select(kv => kv.Key).Where(k => !keep.Contains(k)).ToList())
            {
                target.Remove(key);
            }
        }

        foreach (var (key, value) in patch)
        {
            if (key is "$retainKeys" || key.StartsWith("$setElementOrder/", StringComparison.Ordinal))
            {
                continue;
            }

            if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                var field = key["$deleteFromPrimitiveList/".Length..];
                if (target[field] is JsonArray values)
                {
                    foreach (var item in values.Where(v => (value as JsonArray ?? []).Any(d => JsonNode.DeepEquals(d, v))).ToList())
                    {
                        values.Remove(item);
                    }
                }

                continue;
            }

            if (key == "$patch")
            {
                continue;
            }

            if (key.StartsWith('$'))
            {
                throw ApiError.BadRequest($"unable to apply the strategic merge patch: the directive '{key}' is not supported");
            }

            var childFields = new List<string>(fields) { key };
            switch (value)
            {
                case null:
                    target.Remove(key);
                    break;
                case JsonObject child when Directive(child) == "delete":
                    target.Remove(key);
                    break;
                case JsonObject child when Directive(child) == "replace" || target[key] is not JsonObject:
                    target[key] = WithoutDirectives(child);
                    break;
                case JsonObject child:
                    MergeMap(kind, target[key]!.AsObject(), child, childFields);
                    break;
                case JsonArray list:
                    target[key] = MergeList(kind, target[key] as JsonArray, list, childFields);
                    break;
                default:
                    target[key] = value.DeepClone();
                    break;
            }
        }
    }

    private static JsonArray MergeList(string kind, JsonArray? target, JsonArray patch, List<string> fields)
    {
        var (type, keys) = ListSchema.For(kind, fields);
        if (patch.Any(i => i is JsonObject o && Directive(o) == "replace"))
        {
            return new JsonArray([.. patch.Where(i => !(i is JsonObject o && Directive(o) == "replace")).Select(i => i is JsonObject o ? WithoutDirectives(o) : i?.DeepClone())]);
        }

        if (type == ListType.Atomic || target is null)
        {
            return new JsonArray([.. patch.Where(i => !(i is JsonObject o && Directive(o) == "delete")).Select(i => i is JsonObject o ? WithoutDirectives(o) : i?.DeepClone())]);
        }

        var result = (JsonArray)target.DeepClone();
        foreach (var item in patch)
        {
            if (type == ListType.Set)
            {
                if (!result.Any(r => JsonNode.DeepEquals(r, item)))
                {
                    result.Add(item?.DeepClone());
                }

                continue;
            }

            if (item is not JsonObject patchItem)
            {
                throw ApiError.BadRequest($"unable to apply the strategic merge patch: the items of {string.Join('.', fields)} must be objects with {string.Join(", ", keys)}");
            }

            var existing = result.FirstOrDefault(r => keys.All(k => JsonNode.DeepEquals(Key(r, k), Key(patchItem, k)))) as JsonObject;
            switch (Directive(patchItem))
            {
                case "delete":
                    if (existing is not null)
                    {
                        result.Remove(existing);
                    }

                    break;
                case "replace" when existing is not null:
                    result[result.IndexOf(existing)] = WithoutDirectives(patchItem);
                    break;
                default:
                    if (existing is null)
                    {
                        result.Add(WithoutDirectives(patchItem));
                    }
                    else
                    {
                        MergeMap(kind, existing, patchItem, fields);
                    }

                    break;
            }
        }

        return result;
    }

    /// <summary>A merge key's value, with the schema's default where the item leaves it out.</summary>
    private static JsonNode? Key(JsonNode? item, string key) => item?[key] ?? (key == "protocol" ? JsonValue.Create("TCP") : null);

    private static string? Directive(JsonObject obj)
    {
        var directive = obj["$patch"]?.GetValue<string>();
        return directive is null or "merge" or "delete" or "replace"
            ? directive
            : throw ApiError.BadRequest($"unable to apply the strategic merge patch: unknown $patch value '{directive}' (allowed: merge, replace, delete)");
    }

    private static JsonObject WithoutDirectives(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        foreach (var key in copy.Select(kv => kv.Key).Where(k => k.StartsWith('$')).ToList())
        {
            copy.Remove(key);
        }

        return copy;
    }
}
