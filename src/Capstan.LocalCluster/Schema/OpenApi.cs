using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Schema;

/// <summary>
/// The OpenAPI documents kube-apiserver publishes, made from <see cref="ApiSchema"/>: v2 at <c>/openapi/v2</c>
/// (definitions and paths of every served kind) and v3 at <c>/openapi/v3</c> (an index of group versions, each with
/// its paths and the schemas they reach). The PATCH operations declare the <c>fieldValidation</c> and <c>dryRun</c>
/// parameters, which is how kubectl learns that the server validates fields itself.
/// </summary>
internal static class OpenApi
{
    private const string V2Prefix = "#/definitions/";
    private const string V3Prefix = "#/components/schemas/";

    private static readonly Lazy<string> V2Text = new(() => V2().ToJsonString());
    private static readonly Lazy<Dictionary<string, string>> V3Texts = new(() =>
        ResourceTypes.All.Select(r => r.ApiVersion).Distinct().ToDictionary(gv => gv, gv => V3(gv).ToJsonString(), StringComparer.Ordinal));

    /// <summary>The v2 document, serialized once.</summary>
    public static string V2Document => V2Text.Value;

    /// <summary>
    /// The v3 document of a group version (<c>v1</c>, <c>apps/v1</c>, or a custom resource's, made from its definition's
    /// schema), or null when none is served.
    /// </summary>
    public static string? V3Document(ResourceRegistry types, string groupVersion) =>
        V3Texts.Value.GetValueOrDefault(groupVersion) ?? (types.Custom.Any(t => t.ApiVersion == groupVersion) ? CustomV3(types, groupVersion).ToJsonString() : null);

    /// <summary>The v3 index: each group version's path with a hash of its document, as the real server gives it.</summary>
    public static JsonObject V3Index(ResourceRegistry types)
    {
        var paths = new JsonObject();
        var custom = types.Custom.Select(t => t.ApiVersion).Distinct().Where(gv => !V3Texts.Value.ContainsKey(gv)).Select(gv => (gv, CustomV3(types, gv).ToJsonString()));
        foreach (var (gv, text) in V3Texts.Value.Select(kv => (kv.Key, kv.Value)).Concat(custom))
        {
            var hash = Convert.ToHexString(SHA512.HashData(Encoding.UTF8.GetBytes(text)))[..64];
            var path = gv.Contains('/', StringComparison.Ordinal) ? $"apis/{gv}" : $"api/{gv}";
            paths[path] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{path}?hash={hash}" };
        }

        return new JsonObject { ["paths"] = paths };
    }

    private static JsonObject V2()
    {
        var schema = ApiSchema.Default;
        var definitions = new JsonObject();
        foreach (var type in schema.Types)
        {
            definitions[type.FullName] = TypeSchema(type, V2Prefix);
        }

        foreach (var (name, scalar) in Scalars())
        {
            definitions[name] = scalar;
        }

        var paths = new JsonObject();
        foreach (var resource in ResourceTypes.All)
        {
            AddPaths(paths, resource, v3: false);
        }

        return new JsonObject
        {
            ["swagger"] = "2.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["definitions"] = definitions,
        };
    }

    private static JsonObject V3(string groupVersion)
    {
        var schema = ApiSchema.Default;
        var paths = new JsonObject();
        var reached = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var resource in ResourceTypes.All.Where(r => r.ApiVersion == groupVersion))
        {
            AddPaths(paths, resource, v3: true);
            Reach(schema, schema.ForKind(resource.Kind), reached);
            if (resource.HasScale)
            {
                Reach(schema, schema.ForKind("Scale"), reached);
            }
        }

        var schemas = new JsonObject();
        foreach (var name in reached)
        {
            schemas[name] = TypeSchema(schema.Types.First(t => t.FullName == name), V3Prefix);
        }

        foreach (var (name, scalar) in Scalars())
        {
            schemas[name] = scalar;
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    /// <summary>
    /// A custom resources' group version: their paths, and each definition's schema under the name kube-apiserver gives
    /// it (the group reversed, the version, the kind: <c>org.example.v1.Widget</c>).
    /// </summary>
    private static JsonObject CustomV3(ResourceRegistry types, string groupVersion)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var resource in types.Custom.Where(r => r.ApiVersion == groupVersion))
        {
            var name = string.Join('.', resource.Group.Split('.').Reverse()) + $".{resource.Version}.{resource.Kind}";
            AddPaths(paths, resource, v3: true, name);
            var schema = (JsonObject)resource.Custom!.Schema.DeepClone();
            var properties = schema["properties"] as JsonObject ?? [];
            properties["apiVersion"] = new JsonObject { ["type"] = "string" };
            properties["kind"] = new JsonObject { ["type"] = "string" };
            properties["metadata"] = new JsonObject { ["type"] = "object" };
            schema["properties"] = properties;
            schema["x-kubernetes-group-version-kind"] = new JsonArray(Gvk(resource.Group, resource.Version, resource.Kind));
            schemas[name] = schema;
            if (resource.HasScale)
            {
                var reached = new SortedSet<string>(StringComparer.Ordinal);
                Reach(ApiSchema.Default, ApiSchema.Default.ForKind("Scale"), reached);
                foreach (var scaleType in reached)
                {
                    schemas[scaleType] = TypeSchema(ApiSchema.Default.Types.First(t => t.FullName == scaleType), V3Prefix);
                }
            }
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes CRD Swagger", ["version"] = "v0.1.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    private static void Reach(ApiSchema schema, SchemaType? type, SortedSet<string> reached)
    {
        if (type is null || !reached.Add(type.FullName))
        {
            return;
        }

        foreach (var field in type.Fields.Values)
        {
            for (var t = field.Type; t is not null; t = t.Element)
            {
                Reach(schema, schema.TypeOf(t), reached);
            }
        }
    }

    private static IEnumerable<(string Name, JsonObject Schema)> Scalars()
    {
        yield return ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", new JsonObject
        {
            ["description"] = "IntOrString is a type that can hold an int32 or a string.",
            ["type"] = "string",
            ["format"] = "int-or-string",
        });
        yield return ("io.k8s.apimachinery.pkg.api.resource.Quantity", new JsonObject
        {
            ["description"] = "Quantity is a fixed-point representation of a number, such as 500m, 1Gi or 2.",
            ["type"] = "string",
        });
        yield return ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", new JsonObject
        {
            ["description"] = "Time is a timestamp in RFC 3339 form, in UTC, to the second.",
            ["type"] = "string",
            ["format"] = "date-time",
        });
    }

    private static JsonObject TypeSchema(SchemaType type, string prefix)
    {
        var properties = new JsonObject();
        foreach (var field in type.Fields.Values)
        {
            properties[field.Name] = FieldSchema(field, prefix);
        }

        var result = new JsonObject { ["description"] = type.Description, ["type"] = "object" };
        var required = type.Fields.Values.Where(f => f.Required).Select(f => (JsonNode)JsonValue.Create(f.Name)).ToArray();
        if (required.Length > 0)
        {
            result["required"] = new JsonArray(required);
        }

        result["properties"] = properties;
        if (type.Gvk is var (group, version, kind))
        {
            result["x-kubernetes-group-version-kind"] = new JsonArray(new JsonObject { ["group"] = group, ["kind"] = kind, ["version"] = version });
        }

        if (type.Atomic)
        {
            result["x-kubernetes-map-type"] = "atomic";
        }

        return result;
    }

    private static JsonObject FieldSchema(SchemaField field, string prefix)
    {
        var result = Of(field.Type, prefix);
        if (field.Description.Length > 0)
        {
            result["description"] = field.Description;
        }

        if (field.Type.IsList)
        {
            if (field.ListType is { } listType)
            {
                result["x-kubernetes-list-type"] = listType;
            }

            if (field.MapKeys.Count > 0)
            {
                result["x-kubernetes-list-map-keys"] = new JsonArray([.. field.MapKeys.Select(k => (JsonNode)JsonValue.Create(k))]);
            }
        }

        var strategies = new List<string>();
        if (field.MergeKey is not null || field.MergePrimitives)
        {
            strategies.Add("merge");
        }

        if (field.RetainKeys || (field.Type.Reference is { } reference && ApiSchema.Default.Resolve(reference).RetainKeys))
        {
            strategies.Add("retainKeys");
        }

        if (field.MergeKey is { } key)
        {
            result["x-kubernetes-patch-merge-key"] = key;
        }

        if (strategies.Count > 0)
        {
            result["x-kubernetes-patch-strategy"] = string.Join(',', strategies);
        }

        return result;
    }

    private static JsonObject Of(FieldType type, string prefix)
    {
        if (type.IsList)
        {
            return new JsonObject { ["type"] = "array", ["items"] = Of(type.Element!, prefix) };
        }

        if (type.IsMap)
        {
            return new JsonObject { ["type"] = "object", ["additionalProperties"] = Of(type.Element!, prefix) };
        }

        return type.Primitive switch
        {
            "string" => new JsonObject { ["type"] = "string" },
            "int32" or "int64" => new JsonObject { ["type"] = "integer", ["format"] = type.Primitive },
            "number" => new JsonObject { ["type"] = "number", ["format"] = "double" },
            "boolean" => new JsonObject { ["type"] = "boolean" },
            "byte" => new JsonObject { ["type"] = "string", ["format"] = "byte" },
            "any" => new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true },
            "intstr" => Ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString", prefix),
            "quantity" => Ref("io.k8s.apimachinery.pkg.api.resource.Quantity", prefix),
            "time" => Ref("io.k8s.apimachinery.pkg.apis.meta.v1.Time", prefix),
            _ => Ref(ApiSchema.Default.Resolve(type.Reference!).FullName, prefix),
        };
    }

    private static JsonObject Ref(string fullName, string prefix) =>
        prefix == V3Prefix
            ? new JsonObject { ["allOf"] = new JsonArray(new JsonObject { ["$ref"] = prefix + fullName }) }
            : new JsonObject { ["$ref"] = prefix + fullName };

    private static void AddPaths(JsonObject paths, ResourceType resource, bool v3)
    {
        if (ApiSchema.Default.ForKind(resource.Kind) is { } schema)
        {
            AddPaths(paths, resource, v3, schema.FullName);
        }
    }

    private static void AddPaths(JsonObject paths, ResourceType resource, bool v3, string type)
    {
        var root = resource.Group.Length == 0 ? $"/api/{resource.Version}" : $"/apis/{resource.Group}/{resource.Version}";
        var collection = resource.Namespaced ? $"{root}/namespaces/{{namespace}}/{resource.Plural}" : $"{root}/{resource.Plural}";
        var gvk = Gvk(resource.Group, resource.Version, resource.Kind);
        var names = resource.Namespaced ? new[] { "namespace" } : [];
        paths[collection] = Path(names, v3,
            ("get", Operation("list", resource, type + "List", gvk, v3, ["fieldSelector", "labelSelector", "limit", "resourceVersion", "timeoutSeconds", "watch"], listOf: type)),
            ("post", Operation("create", resource, type, gvk, v3, ["dryRun", "fieldManager", "fieldValidation"])));
        paths[$"{collection}/{{name}}"] = Path([.. names, "name"], v3,
            ("get", Operation("get", resource, type, gvk, v3, [])),
            ("put", Operation("put", resource, type, gvk, v3, ["dryRun", "fieldManager", "fieldValidation"])),
            ("patch", Operation("patch", resource, type, gvk, v3, ["dryRun", "fieldManager", "fieldValidation", "force"])),
            ("delete", Operation("delete", resource, type, gvk, v3, ["dryRun", "gracePeriodSeconds", "propagationPolicy"])));
        if (resource.HasStatus)
        {
            paths[$"{collection}/{{name}}/status"] = Path([.. names, "name"], v3,
                ("get", Operation("get", resource, type, gvk, v3, [])),
                ("put", Operation("put", resource, type, gvk, v3, ["dryRun", "fieldManager", "fieldValidation"])),
                ("patch", Operation("patch", resource, type, gvk, v3, ["dryRun", "fieldManager", "fieldValidation", "force"])));
        }

        if (resource.HasScale)
        {
            var scale = ApiSchema.Default.ForKind("Scale")!.FullName;
            var scaleGvk = Gvk("autoscaling", "v1", "Scale");
            paths[$"{collection}/{{name}}/scale"] = Path([.. names, "name"], v3,
                ("get", Operation("get", resource, scale, scaleGvk, v3, [])),
                ("put", Operation("put", resource, scale, scaleGvk, v3, ["dryRun", "fieldManager", "fieldValidation"])),
                ("patch", Operation("patch", resource, scale, scaleGvk, v3, ["dryRun", "fieldManager", "fieldValidation", "force"])));
        }
    }

    private static JsonObject Gvk(string group, string version, string kind) => new() { ["group"] = group, ["kind"] = kind, ["version"] = version };

    private static JsonObject Path(string[] pathParameters, bool v3, params (string Method, JsonObject Operation)[] operations)
    {
        var path = new JsonObject();
        foreach (var (method, operation) in operations)
        {
            path[method] = operation;
        }

        path["parameters"] = new JsonArray([.. pathParameters.Select(p => (JsonNode)Parameter(p, "path", v3))]);
        return path;
    }

    private static JsonObject Parameter(string name, string where, bool v3)
    {
        var parameter = new JsonObject { ["name"] = name, ["in"] = where, ["uniqueItems"] = true };
        if (where == "path")
        {
            parameter["required"] = true;
        }

        var type = name is "limit" or "timeoutSeconds" or "gracePeriodSeconds" ? "integer" : name is "force" or "watch" ? "boolean" : "string";
        if (v3)
        {
            parameter["schema"] = new JsonObject { ["type"] = type, ["uniqueItems"] = true };
        }
        else
        {
            parameter["type"] = type;
        }

        return parameter;
    }

    private static JsonObject Operation(string action, ResourceType resource, string type, JsonObject gvk, bool v3, string[] query, string? listOf = null)
    {
        var prefix = v3 ? V3Prefix : V2Prefix;
        var response = listOf is null ? new JsonObject { ["$ref"] = prefix + type } : new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject { ["items"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["$ref"] = prefix + listOf } } },
        };
        var ok = v3
            ? new JsonObject { ["description"] = "OK", ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = response } } }
            : new JsonObject { ["description"] = "OK", ["schema"] = response };
        var operation = new JsonObject
        {
            ["description"] = $"{action} {resource.Kind}",
            ["operationId"] = $"{action}{resource.Kind}",
            ["parameters"] = new JsonArray([.. query.Select(q => (JsonNode)Parameter(q, "query", v3))]),
            ["responses"] = new JsonObject { ["200"] = ok },
            ["x-kubernetes-action"] = action,
            ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
        };
        return operation;
    }
}
