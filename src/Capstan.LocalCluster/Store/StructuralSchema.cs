using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// A custom resource's structural schema at work, as kube-apiserver's apiextensions code and kube-openapi do it:
/// pruning the fields it does not declare, filling in its defaults, and validating values with kube-openapi's checks
/// in kube-apiserver's words.
/// </summary>
internal static class StructuralSchema
{
    /// <summary>Drops what the schema does not declare (unless it keeps unknown fields), and nulls it does not allow.</summary>
    internal static void Prune(JsonObject schema, JsonNode? node)
    {
        switch (node)
        {
            case JsonObject map when Properties(schema) is { } properties:
                foreach (var (key, value) in map.ToList())
                {
                    if (properties[key] is JsonObject property)
                    {
                        if (value is null && !Flag(property["nullable"]))
                        {
                            // As kube-apiserver: a null where the schema does not allow one is dropped (then defaulted).
                            map.Remove(key);
                        }
                        else
                        {
                            Prune(property, value);
                        }
                    }
                    else if (!PreservesUnknown(schema) && !(Flag(schema["x-kubernetes-embedded-resource"]) && key is "apiVersion" or "kind" or "metadata"))
                    {
                        map.Remove(key);
                    }
                }

                break;
            case JsonObject map when schema["additionalProperties"] is JsonObject values:
                foreach (var (_, value) in map)
                {
                    Prune(values, value);
                }

                break;
            case JsonObject map when !PreservesUnknown(schema) && schema["additionalProperties"]?.GetValueKind() != System.Text.Json.JsonValueKind.True
                && !Flag(schema["x-kubernetes-embedded-resource"]):
                map.Clear();
                break;
            case JsonArray list when schema["items"] is JsonObject items:
                foreach (var item in list)
                {
                    Prune(items, item);
                }

                break;
        }
    }

    /// <summary>Collects the dotted paths of what the schema does not declare, as fieldValidation reports them.</summary>
    internal static void Unknown(JsonObject schema, JsonNode? node, string path, List<string> unknown)
    {
        switch (node)
        {
            case JsonObject map when Properties(schema) is { } properties:
                foreach (var (key, value) in map)
                {
                    if (properties[key] is JsonObject property)
                    {
                        Unknown(property, value, $"{path}.{key}", unknown);
                    }
                    else if (!PreservesUnknown(schema))
                    {
                        unknown.Add($"{path}.{key}");
                    }
                }

                break;
            case JsonObject map when schema["additionalProperties"] is JsonObject values:
                foreach (var (key, value) in map)
                {
                    Unknown(values, value, $"{path}.{key}", unknown);
                }

                break;
            case JsonArray list when schema["items"] is JsonObject items:
                for (var i = 0; i < list.Count; i++)
                {
                    Unknown(items, list[i], $"{path}[{i}]", unknown);
                }

                break;
        }
    }

    /// <summary>Fills in the schema's defaults where a value is missing, at every level.</summary>
    internal static void Default(JsonObject schema, JsonNode? node)
    {
        switch (node)
        {
            case JsonObject map when Properties(schema) is { } properties:
                foreach (var (key, value) in properties)
                {
                    if (value is JsonObject property && !map.ContainsKey(key) && property["default"] is { } fallback)
                    {
                        map[key] = fallback.DeepClone();
                    }
                }

                foreach (var (key, value) in map.ToList())
                {
                    if (properties[key] is JsonObject property)
                    {
                        Default(property, value);
                    }
                }

                break;
            case JsonObject map when schema["additionalProperties"] is JsonObject values:
                foreach (var (_, value) in map)
                {
                    Default(values, value);
                }

                break;
            case JsonArray list when schema["items"] is JsonObject items:
                foreach (var item in list)
                {
                    Default(items, item);
                }

                break;
        }
    }

    /// <summary>
    /// Validates a value against its schema with kube-openapi's checks and kube-apiserver's wording of them: the type,
    /// enum, bounds, lengths, pattern, item counts and required properties.
    /// </summary>
    internal static void Validate(JsonObject schema, JsonNode? node, string path, List<(string, string)> causes)
    {
        if (node is null)
        {
            if (!Flag(schema["nullable"]) && Str(schema["type"]) is { } expected)
            {
                causes.Add((path, $"Invalid value: \"null\": {path} in body must be of type {expected}: \"null\""));
            }

            return;
        }

        var actual = TypeOf(node);
        if (Str(schema["type"]) is { } type && !Fits(type, actual, schema))
        {
            causes.Add((path, $"Invalid value: \"{actual}\": {path} in body must be of type {type}: \"{actual}\""));
            return;
        }

        if (Flag(schema["x-kubernetes-int-or-string"]) && actual is not ("integer" or "string"))
        {
            causes.Add((path, $"Invalid value: \"{actual}\": {path} in body must be of type integer,string: \"{actual}\""));
            return;
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, node)))
        {
            var values = string.Join(", ", allowed.Select(a => a?.GetValueKind() == System.Text.Json.JsonValueKind.String ? Quote(a.GetValue<string>()) : Quote(a?.ToJsonString() ?? "null")));
            causes.Add((path, $"Unsupported value: {Display(node)}: supported values: {values}"));
        }

        switch (node)
        {
            case JsonValue value when actual is "integer" or "number":
                var number = JsonNumber.Double(value) ?? 0;
                if (JsonNumber.Double(schema["minimum"]) is { } min && (Flag(schema["exclusiveMinimum"]) ? number <= min : number < min))
                {
                    causes.Add((path, $"Invalid value: {Display(node)}: {path} in body should be greater than {(Flag(schema["exclusiveMinimum"]) ? string.Empty : "or equal to ")}{Number(min)}"));
                }

                if (JsonNumber.Double(schema["maximum"]) is { } max && (Flag(schema["exclusiveMaximum"]) ? number >= max : number > max))
                {
                    causes.Add((path, $"Invalid value: {Display(node)}: {path} in body should be less than {(Flag(schema["exclusiveMaximum"]) ? string.Empty : "or equal to ")}{Number(max)}"));
                }

                break;
            case JsonValue value when actual == "string":
                var text = value.GetValue<string>();
                var runes = text.EnumerateRunes().Count();
                if (JsonNumber.Long(schema["maxLength"]) is { } maxLength && runes > maxLength)
                {
                    causes.Add((path, $"Too long: may not be more than {maxLength} bytes"));
                }

                if (JsonNumber.Long(schema["minLength"]) is { } minLength && runes < minLength)
                {
                    causes.Add((path, $"Invalid value: {Display(node)}: {path} in body should be at least {minLength} chars long"));
                }

                if (Str(schema["pattern"]) is { } pattern && !Matches(pattern, text))
                {
                    causes.Add((path, $"Invalid value: {Display(node)}: {path} in body should match '{pattern}'"));
                }

                break;
            case JsonArray list:
                if (JsonNumber.Long(schema["maxItems"]) is { } maxItems && list.Count > maxItems)
                {
                    causes.Add((path, $"Too many: {list.Count}: must have at most {maxItems} items"));
                }

                if (JsonNumber.Long(schema["minItems"]) is { } minItems && list.Count < minItems)
                {
                    causes.Add((path, $"Invalid value: {list.Count}: {path} in body should have at least {minItems} items"));
                }

                if (schema["items"] is JsonObject items)
                {
                    for (var i = 0; i < list.Count; i++)
                    {
                        Validate(items, list[i], $"{path}[{i}]", causes);
                    }
                }

                break;
            case JsonObject map:
                var properties = Properties(schema);
                foreach (var (key, value) in map)
                {
                    if (properties?[key] is JsonObject property)
                    {
                        Validate(property, value, $"{path}.{key}", causes);
                    }
                    else if (schema["additionalProperties"] is JsonObject values)
                    {
                        Validate(values, value, $"{path}.{key}", causes);
                    }
                }

                foreach (var required in Required(schema).Where(r => !map.ContainsKey(r)))
                {
                    causes.Add(($"{path}.{required}", "Required value"));
                }

                break;
        }
    }

    private static bool Fits(string type, string actual, JsonObject schema) => type switch
    {
        "number" => actual is "number" or "integer",
        _ when Flag(schema["x-kubernetes-int-or-string"]) => actual is "integer" or "string",
        _ => type == actual,
    };

    private static string TypeOf(JsonNode node) => node.GetValueKind() switch
    {
        System.Text.Json.JsonValueKind.Object => "object",
        System.Text.Json.JsonValueKind.Array => "array",
        System.Text.Json.JsonValueKind.String => "string",
        System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => "boolean",
        // A whole number is an integer however it is written (1.0 too), as go-openapi judges it.
        System.Text.Json.JsonValueKind.Number => JsonNumber.Double(node) is { } d && double.IsFinite(d) && Math.Floor(d) == d ? "integer" : "number",
        _ => "null",
    };

    private static bool Matches(string pattern, string text) => Pattern(pattern)?.IsMatch(text) ?? false;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Text.RegularExpressions.Regex?> Patterns = new(StringComparer.Ordinal);

    /// <summary>
    /// A schema's pattern, compiled once, matched in linear time as RE2 (Go's regexp) does: no backtracking, so no
    /// value can make a match take long. Null when it is not a pattern this engine takes.
    /// </summary>
    internal static System.Text.RegularExpressions.Regex? Pattern(string pattern) => Patterns.GetOrAdd(pattern, p =>
    {
        try
        {
            return new System.Text.RegularExpressions.Regex(p, System.Text.RegularExpressions.RegexOptions.NonBacktracking | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
        {
            return null;
        }
    });

    /// <summary>A value as Go's field errors print it: strings quoted, numbers and booleans bare, the rest as JSON.</summary>
    private static string Display(JsonNode node) =>
        node.GetValueKind() == System.Text.Json.JsonValueKind.String ? Quote(node.GetValue<string>()) : node.ToJsonString();

    private static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s, JsonOptions);

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Number(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    internal static JsonObject? Properties(JsonObject schema) => schema["properties"] as JsonObject;

    internal static JsonObject? Property(JsonObject schema, string key) => Properties(schema)?[key] as JsonObject;

    internal static IEnumerable<string> Required(JsonObject schema) => (schema["required"] as JsonArray ?? []).Select(Str).OfType<string>();

    internal static bool PreservesUnknown(JsonObject schema) => Flag(schema["x-kubernetes-preserve-unknown-fields"]);

    internal static bool Flag(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    internal static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
