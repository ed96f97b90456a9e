using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// JSON Patch (RFC 6902, <c>application/json-patch+json</c>): add, remove, replace, move, copy and test on JSON
/// Pointer paths (RFC 6901). <c>kubectl rollout undo</c> uses it. A failed operation is a 422 and the object is
/// left as it was (the patch works on a copy).
/// </summary>
internal static class JsonPatch
{
    /// <summary>Applies the operations to <paramref name="target"/> in place.</summary>
    public static void Apply(ResourceType type, string name, JsonObject target, JsonArray operations)
    {
        for (var i = 0; i < operations.Count; i++)
        {
            if (operations[i] is not JsonObject operation || operation["op"]?.GetValue<string>() is not { } op || operation["path"]?.GetValue<string>() is not { } path)
            {
                throw ApiError.BadRequest($"the JSON patch operation at index {i} needs an \"op\" and a \"path\"");
            }

            switch (op)
            {
                case "add":
                    Add(target, path, Value(operation, i));
                    break;
                case "remove":
                    Remove(target, path);
                    break;
                case "replace":
                    Remove(target, path);
                    Add(target, path, Value(operation, i));
                    break;
                case "move":
                    var moved = Get(target, From(operation, i))?.DeepClone();
                    Remove(target, From(operation, i));
                    Add(target, path, moved);
                    break;
                case "copy":
                    Add(target, path, Get(target, From(operation, i))?.DeepClone());
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(target, path), operation["value"]))
                    {
                        throw ApiError.Invalid(type, name, (path, "Invalid value: the test operation failed: the value differs"));
                    }

                    break;
                default:
                    throw ApiError.BadRequest($"unknown JSON patch operation \"{op}\" at index {i} (allowed: add, remove, replace, move, copy, test)");
            }
        }
    }

    private static JsonNode? Value(JsonObject operation, int index) =>
        operation.TryGetPropertyValue("value", out var value) ? value?.DeepClone() : throw ApiError.BadRequest($"the JSON patch operation at index {index} needs a \"value\"");

    private static string From(JsonObject operation, int index) =>
        operation["from"]?.GetValue<string>() ?? throw ApiError.BadRequest($"the JSON patch operation at index {index} needs a \"from\"");

    private static List<string> Tokens(string pointer)
    {
        if (pointer.Length == 0)
        {
            return [];
        }

        if (pointer[0] != '/')
        {
            throw ApiError.BadRequest($"invalid JSON pointer \"{pointer}\": it must start with '/'");
        }

        return [.. pointer[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))];
    }

    private static JsonNode? Get(JsonNode root, string pointer)
    {
        JsonNode? node = root;
        foreach (var token in Tokens(pointer))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(token, out var child) => child,
                JsonArray a when Index(token, a.Count - 1) is { } i => a[i],
                _ => throw Missing(pointer),
            };
        }

        return node;
    }

    private static (JsonNode Parent, string Last) Parent(JsonNode root, string pointer)
    {
        var tokens = Tokens(pointer);
        if (tokens.Count == 0)
        {
            throw ApiError.BadRequest("a JSON patch may not replace or remove the whole object");
        }

        // A top-level path (/data) has the object itself as its parent.
        JsonNode? parent;
        try
        {
            parent = tokens.Count == 1
                ? root
                : Get(root, "/" + string.Join('/', tokens[..^1].Select(t => t.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        }
        catch (ApiError)
        {
            // The error names the path the patch gave, not the part of it that is missing.
            throw Missing(pointer);
        }

        return (parent ?? throw Missing(pointer), tokens[^1]);
    }

    private static void Add(JsonNode root, string pointer, JsonNode? value)
    {
        var (parent, last) = Parent(root, pointer);
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when Index(last, a.Count) is { } i:
                a.Insert(i, value);
                break;
            default:
                throw Missing(pointer);
        }
    }

    private static void Remove(JsonNode root, string pointer)
    {
        var (parent, last) = Parent(root, pointer);
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when Index(last, a.Count - 1) is { } i:
                a.RemoveAt(i);
                break;
            default:
                throw Missing(pointer);
        }
    }

    private static int? Index(string token, int max) =>
        int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i <= max && (token == "0" || token[0] != '0') ? i : null;

    private static ApiError Missing(string pointer) => new(422, "Invalid", $"the JSON patch path \"{pointer}\" does not exist in the object");
}
