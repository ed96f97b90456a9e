using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Schema;

/// <summary>What a field holds: a scalar, a list or map of something, a named type, or anything.</summary>
internal sealed record FieldType(string? Primitive, FieldType? Element, bool IsList, bool IsMap, string? Reference)
{
    /// <summary>True for free-form content (<c>x-kubernetes-preserve-unknown-fields</c>).</summary>
    public bool IsAny => Primitive == "any";

    public static FieldType Parse(string text) => text switch
    {
        _ when text.StartsWith("[]", StringComparison.Ordinal) => new(null, Parse(text[2..]), true, false, null),
        _ when text.StartsWith("{}", StringComparison.Ordinal) => new(null, Parse(text[2..]), false, true, null),
        "string" or "int32" or "int64" or "number" or "boolean" or "intstr" or "quantity" or "time" or "byte" or "any" => new(text, null, false, false, null),
        _ => new(null, null, false, false, text),
    };
}

/// <summary>A field of a type, with its list semantics for apply and strategic merge patch.</summary>
internal sealed record SchemaField(
    string Name,
    FieldType Type,
    bool Required,
    string Description,
    string? ListType,
    IReadOnlyList<string> MapKeys,
    string? MergeKey,
    bool MergePrimitives,
    bool RetainKeys)
{
    /// <summary>
    /// The field's number in its type's protobuf message (<c>[2]</c>), or in a message embedded in it (<c>[2, 19]</c>:
    /// field 19 of the message in field 2); empty when the field has no protobuf form.
    /// </summary>
    public IReadOnlyList<int> Protobuf { get; init; } = [];

    /// <summary>True when a zero scalar read from protobuf is a value, not an absence (a Go pointer, or no omitempty).</summary>
    public bool ZeroIsValue { get; init; }

    /// <summary>True for a free-form field that protobuf carries as its JSON bytes (FieldsV1).</summary>
    public bool RawJson { get; init; }
}

/// <summary>A named object type (a Go struct of the API), possibly a kind.</summary>
internal sealed record SchemaType(
    string FullName,
    string Description,
    (string Group, string Version, string Kind)? Gvk,
    bool Atomic,
    bool RetainKeys,
    IReadOnlyDictionary<string, SchemaField> Fields)
{
    /// <summary>The part after the last dot (<c>Container</c>).</summary>
    public string ShortName => FullName[(FullName.LastIndexOf('.') + 1)..];
}

/// <summary>
/// The schema of the served kinds (<c>Schema/api.schema</c>, written after the Kubernetes API reference). It is the one
/// source of the OpenAPI documents, of list semantics for server-side apply and strategic merge patch, and of the
/// known fields that <c>fieldValidation</c> checks.
/// </summary>
internal sealed class ApiSchema
{
    private readonly FrozenDictionary<string, SchemaType> _byShortName;
    private readonly FrozenDictionary<string, SchemaType> _byFullName;
    private readonly FrozenDictionary<string, SchemaType> _byKind;

    private ApiSchema(List<SchemaType> types)
    {
        Types = types;
        // A short name two groups share (EndpointPort of core/v1 and of discovery/v1) is referred to by its full name.
        _byShortName = types.GroupBy(t => t.ShortName).Where(g => g.Count() == 1).ToFrozenDictionary(g => g.Key, g => g.Single(), StringComparer.Ordinal);
        _byFullName = types.ToFrozenDictionary(t => t.FullName, StringComparer.Ordinal);
        _byKind = types.Where(t => t.Gvk is not null).ToFrozenDictionary(t => t.Gvk!.Value.Kind, StringComparer.Ordinal);
    }

    /// <summary>The schema of this build.</summary>
    public static ApiSchema Default { get; } = Load();

    /// <summary>Every type, in the file's order.</summary>
    public IReadOnlyList<SchemaType> Types { get; }

    /// <summary>The type a field refers to, by its short name or (where two share it) its full name.</summary>
    public SchemaType Resolve(string name) => name.Contains('.', StringComparison.Ordinal) ? _byFullName[name] : _byShortName[name];

    /// <summary>The root type of a kind, or null when the schema has none.</summary>
    public SchemaType? ForKind(string kind) => _byKind.GetValueOrDefault(kind);

    /// <summary>
    /// The field a path of field names leads to from a kind's root (list items and map values are passed over, so
    /// <c>spec.template.spec.containers.env</c> names the env list of any container); null when the schema does not
    /// know it.
    /// </summary>
    public SchemaField? Field(string kind, IReadOnlyList<string> fields)
    {
        var type = ForKind(kind);
        SchemaField? field = null;
        for (var i = 0; i < fields.Count; i++)
        {
            if (type is null || !type.Fields.TryGetValue(fields[i], out field))
            {
                return null;
            }

            var element = Unlist(field.Type);
            if (element.IsMap)
            {
                // The next name is a key of the map; what follows is inside its value.
                i++;
                element = Unlist(element.Element!);
            }

            type = TypeOf(element);
        }

        return field;
    }

    private static FieldType Unlist(FieldType type)
    {
        while (type.IsList)
        {
            type = type.Element!;
        }

        return type;
    }

    /// <summary>The named type a field type (or its element) holds, or null for scalars and free-form content.</summary>
    public SchemaType? TypeOf(FieldType type) => type.Reference is { } name ? Resolve(name) : null;

    private static ApiSchema Load()
    {
        using var stream = typeof(ApiSchema).Assembly.GetManifestResourceStream("Capstan.LocalCluster.api.schema")
            ?? throw new InvalidOperationException("the API schema is not embedded in the assembly");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd());
    }

    /// <summary>Reads the schema's text format (see the head of <c>api.schema</c>).</summary>
    public static ApiSchema Parse(string text)
    {
        var types = new List<SchemaType>();
        string? name = null;
        var description = string.Empty;
        (string, string, string)? gvk = null;
        var atomic = false;
        var retainKeys = false;
        var fields = new Dictionary<string, SchemaField>(StringComparer.Ordinal);
        var lineNumber = 0;

        void Flush()
        {
            if (name is not null)
            {
                types.Add(new SchemaType(name, description, gvk, atomic, retainKeys, fields.ToFrozenDictionary(StringComparer.Ordinal)));
            }
        }

        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var hash = line.IndexOf("  # ", StringComparison.Ordinal);
            var comment = hash >= 0 ? line[(hash + 4)..].Trim() : string.Empty;
            var words = (hash >= 0 ? line[..hash] : line).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (line.StartsWith("type ", StringComparison.Ordinal))
            {
                Flush();
                name = words[1];
                description = comment;
                gvk = words.FirstOrDefault(w => w.StartsWith("gvk=", StringComparison.Ordinal)) is { } g && g[4..].Split('/') is [var group, var version, var kind]
                    ? (group, version, kind) : null;
                atomic = words.Contains("atomic");
                retainKeys = words.Contains("retainkeys");
                fields = new Dictionary<string, SchemaField>(StringComparer.Ordinal);
                continue;
            }

            if (name is null || !line.StartsWith("  ", StringComparison.Ordinal) || words.Length < 2)
            {
                throw new FormatException($"api.schema:{lineNumber}: expected 'type NAME' or an indented 'FIELD TYPE [flags]'");
            }

            var fieldName = words[0].TrimEnd('!');
            var flags = words[2..];
            string? Flag(string prefix) => flags.FirstOrDefault(f => f.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
            var listType = flags.Contains("set") ? "set" : flags.Contains("atomic") ? "atomic" : Flag("map=") is not null ? "map" : null;
            fields[fieldName] = new SchemaField(
                fieldName,
                FieldType.Parse(words[1]),
                words[0].EndsWith('!'),
                comment,
                listType,
                Flag("map=")?.Split(',') ?? [],
                Flag("merge="),
                flags.Contains("mergeprim"),
                flags.Contains("retainkeys"))
            {
                Protobuf = Flag("pb=")?.Split('.').Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number > 0
                    ? number : throw new FormatException($"api.schema:{lineNumber}: pb= takes field numbers, as pb=3 or pb=2.19")).ToArray() ?? [],
                ZeroIsValue = flags.Contains("zero"),
                RawJson = flags.Contains("raw"),
            };
        }

        Flush();
        var schema = new ApiSchema(types);
        foreach (var type in types)
        {
            foreach (var field in type.Fields.Values)
            {
                for (var t = field.Type; t is not null; t = t.Element)
                {
                    if (t.Reference is { } reference && !schema._byShortName.ContainsKey(reference) && !schema._byFullName.ContainsKey(reference))
                    {
                        throw new FormatException(types.Count(x => x.ShortName == reference) > 1
                            ? $"api.schema: {type.ShortName}.{field.Name} refers to {reference}, which names several types: use the full name"
                            : $"api.schema: {type.ShortName}.{field.Name} refers to an unknown type {reference}");
                    }
                }
            }
        }

        return schema;
    }

    /// <summary>
    /// The fields of an object (or a patch of one) that its kind's schema does not declare, as paths
    /// (<c>spec.template.spec.containers[0].imagePullPolic</c>). Strategic merge patch directives (<c>$patch</c>,
    /// <c>$setElementOrder/…</c>) are not fields, nor are keys set to null (what a patch removes). With <paramref name="prune"/> they are removed from the object.
    /// </summary>
    public List<string> UnknownFields(string kind, JsonObject obj, bool prune)
    {
        var unknown = new List<string>();
        if (ForKind(kind) is { } root)
        {
            Walk(root, obj, string.Empty, unknown, prune);
        }

        return unknown;
    }

    private void Walk(SchemaType type, JsonObject obj, string path, List<string> unknown, bool prune)
    {
        List<string>? remove = null;
        foreach (var (key, value) in obj)
        {
            // Directives are not fields, and a null (a patch removing a key) leaves no field behind.
            if (key.StartsWith('$') || value is null)
            {
                continue;
            }

            var here = path.Length == 0 ? key : $"{path}.{key}";
            if (!type.Fields.TryGetValue(key, out var field))
            {
                unknown.Add(here);
                (remove ??= []).Add(key);
                continue;
            }

            WalkValue(field.Type, value, here, unknown, prune);
        }

        if (prune && remove is not null)
        {
            foreach (var key in remove)
            {
                obj.Remove(key);
            }
        }
    }

    private void WalkValue(FieldType type, JsonNode? value, string path, List<string> unknown, bool prune)
    {
        switch (value)
        {
            case JsonArray list when type.IsList:
                for (var i = 0; i < list.Count; i++)
                {
                    WalkValue(type.Element!, list[i], $"{path}[{i}]", unknown, prune);
                }

                break;
            case JsonObject map when type.IsMap:
                foreach (var (key, item) in map)
                {
                    WalkValue(type.Element!, item, $"{path}[{key}]", unknown, prune);
                }

                break;
            case JsonObject child when TypeOf(type) is { } named:
                Walk(named, child, path, unknown, prune);
                break;
        }
    }
}
