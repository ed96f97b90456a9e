using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <content>The preparation of a write, before it is committed: the namespace it needs, the names in the URL and the body, validation and admission, the server's defaults and bookkeeping (uid, timestamps, generation), and whether anything but bookkeeping changed.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// As kube-apiserver's checkName: the object's name must be the URL's (an update must name it; an apply may leave it
    /// out), and a namespace it names must be the request's. Either mismatch is a 400, never silently replaced.
    /// </summary>
    internal static void CheckUrlNames(ResourceType type, string? ns, string name, JsonObject obj, bool nameRequired)
    {
        var bodyName = obj["metadata"]?["name"]?.GetValue<string>();
        if ((bodyName is not null || nameRequired) && bodyName != name)
        {
            throw ApiError.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
        }

        if (type.Namespaced && obj.Kube.Namespace is { Length: > 0 } objNs && objNs != ns)
        {
            throw ApiError.BadRequest($"the namespace of the object ({objNs}) does not match the namespace on the request ({ns})");
        }
    }

    private void RequireNamespace(ResourceType type, string? ns)
    {
        if (!type.Namespaced)
        {
            return;
        }

        var nsType = ResourceTypes.ByKind("Namespace")!;
        if (!_objects.TryGetValue(Key(nsType, null, ns!), out var namespaceObj))
        {
            throw new ApiError(404, "NotFound", $"namespaces \"{ns}\" not found", kind: "namespaces", name: ns);
        }

        if (namespaceObj["metadata"]?["deletionTimestamp"] is not null)
        {
            throw new ApiError(403, "Forbidden", $"unable to create new content in namespace {ns} because it is being terminated");
        }
    }

    private string Validate(ResourceType type, string? ns, JsonObject obj)
    {
        var name = obj["metadata"]?["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name) && obj["metadata"]?["generateName"]?.GetValue<string>() is { } generate)
        {
            name = generate + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..5];
            obj["metadata"]!["name"] = name;
        }

        if (string.IsNullOrEmpty(name))
        {
            throw ApiError.Invalid(type, string.Empty, ("metadata.name", "Required value: name or generateName is required"));
        }

        var why = Admission.NameProblem(type, name);
        if (why is not null)
        {
            throw ApiError.Invalid(type, name, ("metadata.name", $"Invalid value: \"{name}\": {why}"));
        }

        if (obj["kind"]?.GetValue<string>() is { } kind && kind != type.Kind)
        {
            throw ApiError.BadRequest($"the kind of the object ({kind}) does not match the URL ({type.Kind})");
        }

        if (obj["apiVersion"]?.GetValue<string>() is { } apiVersion && apiVersion != type.ApiVersion)
        {
            throw ApiError.BadRequest($"the API version of the object ({apiVersion}) does not match the URL ({type.ApiVersion})");
        }

        // An empty namespace is unset, as kube-apiserver reads it: the request's applies.
        if (type.Namespaced && obj.Kube.Namespace is { Length: > 0 } objNs && objNs != ns)
        {
            throw ApiError.BadRequest($"the namespace of the object ({objNs}) does not match the namespace on the request ({ns})");
        }

        foreach (var (key, value) in obj["metadata"]?["labels"] as JsonObject ?? [])
        {
            if (value?.GetValueKind() != System.Text.Json.JsonValueKind.String || KubeNames.CheckLabelValue(value.GetValue<string>()) is not null)
            {
                throw ApiError.Invalid(type, name, ($"metadata.labels[{key}]", "Invalid value: a label value must be a string of at most 63 letters, digits, '-', '_' or '.'"));
            }
        }

        return name;
    }

    private JsonObject Prepare(ResourceType type, string? ns, JsonObject obj)
    {
        if (type.Custom is { } custom && _objects.GetValueOrDefault(Key(DefinitionType, null, custom.Definition))?["metadata"]?["deletionTimestamp"] is not null)
        {
            // As kube-apiserver: the definition's cleanup is not chased by new objects.
            throw new ApiError(405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating");
        }

        var copy = (JsonObject)obj.DeepClone();
        copy["apiVersion"] = type.ApiVersion;
        copy["kind"] = type.Kind;
        var meta = (JsonObject)copy["metadata"]!;
        if (type.Namespaced)
        {
            meta["namespace"] = ns;
        }
        else
        {
            meta.Remove("namespace");
        }

        meta["uid"] = Guid.NewGuid().ToString();
        meta["creationTimestamp"] = Now();
        if (copy["spec"] is not null || type.Custom is not null)
        {
            meta["generation"] = 1;
        }


        if (!type.HasStatus)
        {
            Admission.Admit(type, copy, null);
            return copy;
        }

        // A Node keeps the status it is created with: a kubelet registers its node with its capacity in the create.
        if (!type.Is("Node"))
        {
            copy.Remove("status");
        }

        if (type.Is("Namespace"))
        {
            copy["spec"] = new JsonObject { ["finalizers"] = new JsonArray("kubernetes") };
            copy["status"] = new JsonObject { ["phase"] = "Active" };
            meta.Remove("generation");
            var labels = meta["labels"] as JsonObject ?? [];
            labels["kubernetes.io/metadata.name"] = meta["name"]!.GetValue<string>();
            meta["labels"] = labels;
        }

        Admission.Admit(type, copy, null);
        if (type.Is("Pod") && ns is not null)
        {
            AdmitPodResources(ns, copy);
        }

        return copy;
    }

    private static void CopySystemMetadata(JsonObject live, JsonObject next)
    {
        next["apiVersion"] = live["apiVersion"]!.DeepClone();
        next["kind"] = live["kind"]!.DeepClone();
        var meta = next["metadata"] as JsonObject ?? [];
        next["metadata"] = meta;
        foreach (var key in new[] { "name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds" })
        {
            if (live["metadata"]?[key] is { } value)
            {
                meta[key] = value.DeepClone();
            }
        }
    }

    private static void BumpGeneration(ResourceType type, JsonObject live, JsonObject next)
    {
        if (type.Custom is { } custom)
        {
            // A custom resource's generation counts changes to anything but its metadata (and status, when that is a
            // subresource of its own).
            if (next.Any(kv => kv.Key is not ("metadata" or "apiVersion" or "kind") && !(kv.Key == "status" && custom.StatusSubresource) && !JsonNode.DeepEquals(kv.Value, live[kv.Key]))
                || live.Any(kv => kv.Key is not ("metadata" or "apiVersion" or "kind") && !(kv.Key == "status" && custom.StatusSubresource) && !next.ContainsKey(kv.Key)))
            {
                next["metadata"]!["generation"] = (JsonNumber.Long(live["metadata"]?["generation"]) ?? 0) + 1;
            }

            return;
        }

        if (next["spec"] is not null && !JsonNode.DeepEquals(live["spec"], next["spec"]))
        {
            next["metadata"]!["generation"] = (JsonNumber.Long(live["metadata"]?["generation"]) ?? 0) + 1;
        }
    }

    /// <summary>
    /// True when two versions of an object differ only in what the server keeps for itself (the resourceVersion and the
    /// times in managedFields): such a write changes nothing and is not stored. Compared in place, without copies.
    /// </summary>
    private static bool SameButBookkeeping(JsonObject a, JsonObject b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (var (key, value) in a)
        {
            if (!b.TryGetPropertyValue(key, out var other))
            {
                return false;
            }

            if (key == "metadata" && value is JsonObject metaA && other is JsonObject metaB)
            {
                if (!SameMetadata(metaA, metaB))
                {
                    return false;
                }
            }
            else if (!JsonNode.DeepEquals(value, other))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SameMetadata(JsonObject a, JsonObject b)
    {
        var keys = a.Select(kv => kv.Key).Concat(b.Select(kv => kv.Key)).Where(k => k != "resourceVersion").Distinct(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var left = a[key];
            var right = b[key];
            if (key == "managedFields" && left is JsonArray fieldsA && right is JsonArray fieldsB)
            {
                if (fieldsA.Count != fieldsB.Count || fieldsA.Zip(fieldsB).Any(pair => !SameEntry(pair.First as JsonObject, pair.Second as JsonObject)))
                {
                    return false;
                }
            }
            else if (!JsonNode.DeepEquals(left, right))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SameEntry(JsonObject? a, JsonObject? b) =>
        a is not null && b is not null
        && a.Where(kv => kv.Key != "time").All(kv => JsonNode.DeepEquals(kv.Value, b[kv.Key]))
        && b.Where(kv => kv.Key != "time").All(kv => a.ContainsKey(kv.Key));
}
