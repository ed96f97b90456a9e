using System.Text.Json.Nodes;
using static Capstan.LocalCluster.Store.StructuralSchema;

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
}
