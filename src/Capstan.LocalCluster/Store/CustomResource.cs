using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>Where a custom resource's <c>/scale</c> subresource finds its replicas (JSON paths such as <c>.spec.replicas</c>).</summary>
public sealed record ScalePaths(string SpecReplicas, string StatusReplicas, string? LabelSelector);

/// <summary>A column <c>kubectl get</c> shows for a custom resource (its definition's <c>additionalPrinterColumns</c>).</summary>
public sealed record PrinterColumn(string Name, string Type, string JsonPath, int Priority);

/// <summary>
/// What an established CustomResourceDefinition says of its resource, for the version the cluster serves: the
/// structural schema that prunes, defaults and validates every write, and the subresources.
/// </summary>
public sealed class CustomResource
{
    private readonly JsonObject _schema;

    private CustomResource(string definition, string singular, JsonObject schema, bool status, ScalePaths? scale, IReadOnlyList<PrinterColumn> columns, IReadOnlyList<string> categories)
    {
        Definition = definition;
        Singular = singular;
        _schema = schema;
        StatusSubresource = status;
        Scale = scale;
        Columns = columns;
        Categories = categories;
    }

    /// <summary>The name of the CustomResourceDefinition.</summary>
    public string Definition { get; }

    /// <summary>The singular name (<c>names.singular</c>).</summary>
    public string Singular { get; }

    /// <summary>True when the definition declares the status subresource.</summary>
    public bool StatusSubresource { get; }

    /// <summary>The scale subresource's paths, or null without one.</summary>
    public ScalePaths? Scale { get; }

    /// <summary>The extra columns of <c>kubectl get</c>.</summary>
    public IReadOnlyList<PrinterColumn> Columns { get; }

    /// <summary>The categories (<c>kubectl get all</c> lists those in <c>all</c>).</summary>
    public IReadOnlyList<string> Categories { get; }

    /// <summary>The OpenAPI v3 schema the definition gives the served version.</summary>
    public JsonObject Schema => _schema;

    /// <summary>
    /// The resource an established definition serves: its storage version (the one version served: the cluster does
    /// not convert between versions), or null when the definition is not established.
    /// </summary>
    public static ResourceType? Served(JsonObject crd)
    {
        // Read defensively: a definition's status is whatever its writers put there.
        if (!((crd["status"] as JsonObject)?["conditions"] as JsonArray ?? []).OfType<JsonObject>().Any(c => Str(c["type"]) == "Established" && Str(c["status"]) == "True"))
        {
            return null;
        }

        var spec = crd["spec"] as JsonObject;
        var names = spec?["names"] as JsonObject;
        var version = (spec?["versions"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(v => Flag(v["storage"]));
        if (spec is null || names is null || version is null || Str(spec["group"]) is not { } group || Str(names["plural"]) is not { } plural
            || Str(names["kind"]) is not { } kind || Str(version["name"]) is not { } name)
        {
            return null;
        }

        var subresources = version["subresources"] as JsonObject;
        var scale = subresources?["scale"] is JsonObject s && Str(s["specReplicasPath"]) is { } specPath && Str(s["statusReplicasPath"]) is { } statusPath
            ? new ScalePaths(specPath, statusPath, Str(s["labelSelectorPath"]))
            : null;
        var columns = (version["additionalPrinterColumns"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(c => Str(c["name"]) is not null && Str(c["jsonPath"]) is not null)
            .Select(c => new PrinterColumn(Str(c["name"])!, Str(c["type"]) ?? "string", Str(c["jsonPath"])!, (int)(JsonNumber.Long(c["priority"]) ?? 0)))
            .ToList();
        var custom = new CustomResource(
            Str(crd["metadata"]?["name"]) ?? string.Empty,
            Str(names["singular"]) ?? kind.ToLowerInvariant(),
            (JsonObject?)((version["schema"] as JsonObject)?["openAPIV3Schema"] as JsonObject)?.DeepClone() ?? new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true },
            subresources?["status"] is JsonObject,
            scale,
            columns,
            [.. (names["categories"] as JsonArray ?? []).Select(Str).OfType<string>()]);
        return new ResourceType(group, name, kind, plural, Str(spec["scope"]) != "Cluster", [.. (names["shortNames"] as JsonArray ?? []).Select(Str).OfType<string>()], custom.StatusSubresource)
        {
            Custom = custom,
        };
    }

    /// <summary>
    /// Prepares a write as kube-apiserver's custom resource handler does: fields the schema does not declare are
    /// dropped (pruning), defaults are filled in, then the result is validated; the causes come back in its words.
    /// </summary>
    public List<(string Field, string Message)> Admit(JsonObject obj)
    {
        var root = (JsonObject)_schema.DeepClone();
        foreach (var (key, value) in obj.ToList())
        {
            if (key is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }

            if (Property(root, key) is { } property)
            {
                if (value is null && !Flag(property["nullable"]))
                {
                    obj.Remove(key);
                }
                else
                {
                    Prune(property, value);
                }
            }
            else if (!PreservesUnknown(root))
            {
                obj.Remove(key);
            }
        }

        Default(root, obj);
        var causes = new List<(string, string)>();
        foreach (var (key, value) in obj)
        {
            if (key is not ("apiVersion" or "kind" or "metadata") && Property(root, key) is { } property)
            {
                Validate(property, value, key, causes);
            }
        }

        foreach (var required in Required(root).Where(r => r is not ("apiVersion" or "kind" or "metadata") && !obj.ContainsKey(r)))
        {
            causes.Add((required, "Required value"));
        }

        return causes;
    }

    /// <summary>The fields of a request body the schema does not declare (dotted paths), as fieldValidation reports them.</summary>
    public List<string> UnknownFields(JsonObject obj)
    {
        var unknown = new List<string>();
        foreach (var (key, value) in obj)
        {
            if (key is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }

            if (Property(_schema, key) is { } property)
            {
                Unknown(property, value, key, unknown);
            }
            else if (!PreservesUnknown(_schema))
            {
                unknown.Add(key);
            }
        }

        return unknown;
    }

    /// <summary>Reads a simple JSON path (<c>.spec.replicas</c>) of an object, or null.</summary>
    public static JsonNode? At(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var step in path.TrimStart('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            node = (node as JsonObject)?[step];
        }

        return node;
    }

    /// <summary>Sets a simple JSON path of an object, making the objects on the way.</summary>
    public static void Set(JsonObject obj, string path, JsonNode? value)
    {
        var steps = path.TrimStart('.').Split('.', StringSplitOptions.RemoveEmptyEntries);
        if (steps.Length == 0)
        {
            return;
        }

        var node = obj;
        foreach (var step in steps[..^1])
        {
            if (node[step] is not JsonObject next)
            {
                next = [];
                node[step] = next;
            }

            node = next;
        }

        node[steps[^1]] = value;
    }

    private static void Prune(JsonObject schema, JsonNode? node)
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

    private static void Unknown(JsonObject schema, JsonNode? node, string path, List<string> unknown)
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

    private static void Default(JsonObject schema, JsonNode? node)
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
    private static void Validate(JsonObject schema, JsonNode? node, string path, List<(string, string)> causes)
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

    private static JsonObject? Properties(JsonObject schema) => schema["properties"] as JsonObject;

    private static JsonObject? Property(JsonObject schema, string key) => Properties(schema)?[key] as JsonObject;

    private static IEnumerable<string> Required(JsonObject schema) => (schema["required"] as JsonArray ?? []).Select(Str).OfType<string>();

    private static bool PreservesUnknown(JsonObject schema) => Flag(schema["x-kubernetes-preserve-unknown-fields"]);

    private static bool Flag(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
