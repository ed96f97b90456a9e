using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <content>The /scale subresource and patches.</content>
internal sealed partial class ApiHandler
{
    /// <summary>
    /// The <c>/scale</c> subresource (autoscaling/v1 Scale): read, replace or patch the replicas of a Deployment or
    /// ReplicaSet. The writer owns <c>spec.replicas</c> of the object (as an HPA or <c>kubectl scale</c> does).
    /// </summary>
    private async Task ScaleAsync(HttpContext context, ResourceType type, string? ns, string name, string? manager)
    {
        var live = store.Get(type, ns, name) ?? throw ApiError.NotFound(type, name);
        var request = context.Request;
        JsonObject? wanted = null;
        switch (request.Method)
        {
            case "GET":
                break;
            case "PUT":
                wanted = await ReadBodyAsync(context);
                if (wanted["metadata"]?["resourceVersion"]?.GetValue<string>() is { Length: > 0 } rv && rv != live["metadata"]?["resourceVersion"]?.GetValue<string>())
                {
                    throw ApiError.Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");
                }

                break;
            case "PATCH":
                var patch = await ReadBodyAsync(context);
                wanted = Scale(type, live);
                switch (request.ContentType?.Split(';')[0].Trim())
                {
                    case "application/merge-patch+json" or "application/strategic-merge-patch+json":
                        FieldOwnership.Merge("Scale", wanted, patch);
                        break;
                    case "application/apply-patch+yaml" when !string.IsNullOrEmpty(manager):
                        var replicasNode = patch["spec"]?["replicas"] ?? throw ApiError.Invalid(type, name, ("spec.replicas", "Required value"));
                        var force = IsTrue(request.Query["force"].FirstOrDefault());
                        var applied = store.Apply(type, ns, name, ReplicasAt(type, replicasNode.DeepClone(), withType: true), manager, force);
                        await WriteAsync(context, 200, Scale(type, applied));
                        return;
                    default:
                        throw new ApiError(415, "UnsupportedMediaType", "the body of a /scale patch must be application/merge-patch+json, application/strategic-merge-patch+json or application/apply-patch+yaml (with a fieldManager)");
                }

                break;
            default:
                throw new ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        }

        if (wanted is not null)
        {
            if (JsonNumber.Long(wanted["spec"]?["replicas"]) is not { } replicas || replicas < 0)
            {
                throw ApiError.Invalid(type, name, ("spec.replicas", $"Invalid value: {wanted["spec"]?["replicas"]?.ToJsonString() ?? "null"}: must be greater than or equal to 0"));
            }

            live = store.MergePatch(type, ns, name, ReplicasAt(type, replicas, withType: false), statusOnly: false, manager ?? DefaultManager(context));
        }

        await WriteAsync(context, 200, Scale(type, live));
    }

    /// <summary>An object holding only the replicas, where the kind keeps them (a custom resource: its specReplicasPath).</summary>
    private static JsonObject ReplicasAt(ResourceType type, JsonNode replicas, bool withType)
    {
        var obj = withType ? new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind } : [];
        CustomResource.Set(obj, type.Custom?.Scale?.SpecReplicas ?? ".spec.replicas", replicas);
        return obj;
    }

    private static JsonObject Scale(ResourceType type, JsonObject obj) => type.Custom?.Scale is { } paths ? new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = ScaleMetadata(obj),
        ["spec"] = new JsonObject { ["replicas"] = JsonNumber.Long(CustomResource.At(obj, paths.SpecReplicas)) ?? 0 },
        ["status"] = new JsonObject
        {
            ["replicas"] = JsonNumber.Long(CustomResource.At(obj, paths.StatusReplicas)) ?? 0,
            ["selector"] = paths.LabelSelector is { } selector && CustomResource.At(obj, selector) is JsonValue value && value.TryGetValue<string>(out var text) ? text : null,
        },
    }
    : new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = ScaleMetadata(obj),
        ["spec"] = new JsonObject { ["replicas"] = JsonNumber.Long(obj["spec"]?["replicas"]) ?? 1 },
        ["status"] = new JsonObject
        {
            ["replicas"] = JsonNumber.Long(obj["status"]?["replicas"]) ?? 0,
            ["selector"] = string.Join(",", (obj["spec"]?["selector"]?["matchLabels"] as JsonObject ?? []).Select(kv => $"{kv.Key}={kv.Value}")),
        },
    };

    private static JsonObject ScaleMetadata(JsonObject obj) => new()
    {
        ["name"] = obj["metadata"]?["name"]?.DeepClone(),
        ["namespace"] = obj["metadata"]?["namespace"]?.DeepClone(),
        ["uid"] = obj["metadata"]?["uid"]?.DeepClone(),
        ["resourceVersion"] = obj["metadata"]?["resourceVersion"]?.DeepClone(),
        ["creationTimestamp"] = obj["metadata"]?["creationTimestamp"]?.DeepClone(),
    };

    private async Task PatchAsync(HttpContext context, ResourceType type, string? ns, string name, bool status, string? manager)
    {
        var contentType = context.Request.ContentType?.Split(';')[0].Trim();
        if (type.Group == "rbac.authorization.k8s.io" && contentType != "application/apply-patch+yaml")
        {
            // A patch's result is only known once applied: judge the escalation on it (a dry run of the patch).
            await PatchRbacAsync(context, type, ns, name, status, manager, contentType);
            return;
        }

        if (type.Custom is not null && contentType == "application/strategic-merge-patch+json")
        {
            // As kube-apiserver: a custom resource has no patch strategies to merge by.
            throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
        }

        if (contentType == "application/json-patch+json")
        {
            var operations = await ReadArrayAsync(context);
            await WriteAsync(context, 200, store.JsonPatch(type, ns, name, operations, status, manager ?? DefaultManager(context), DryRun(context)));
            return;
        }

        var body = CheckFields(context, type, await ReadBodyAsync(context), apply: contentType == "application/apply-patch+yaml");
        if (contentType == "application/apply-patch+yaml")
        {
            // What the role or binding holds after the apply: its rules or roleRef are in the applied configuration.
            var after = (JsonObject)(store.Get(type, ns, name) ?? new JsonObject()).DeepClone();
            foreach (var key in new[] { "rules", "roleRef" })
            {
                if (body[key] is { } value)
                {
                    after[key] = value.DeepClone();
                }
            }

            CheckEscalation(context, type, ns, name, after);
        }

        var dryRun = DryRun(context);
        switch (contentType)
        {
            case "application/apply-patch+yaml":
                if (string.IsNullOrEmpty(manager))
                {
                    throw ApiError.BadRequest("PATCH with application/apply-patch+yaml requires a fieldManager");
                }

                var force = IsTrue(context.Request.Query["force"].FirstOrDefault());
                await WriteAsync(context, 200, dryRun
                    ? store.DryRunApply(type, ns, name, body, manager, force)
                    : store.Apply(type, ns, name, body, manager, force, status));
                return;
            case "application/merge-patch+json":
                await WriteAsync(context, 200, store.MergePatch(type, ns, name, body, status, manager ?? DefaultManager(context), dryRun));
                return;
            case "application/strategic-merge-patch+json":
                await WriteAsync(context, 200, store.StrategicPatch(type, ns, name, body, status, manager ?? DefaultManager(context), dryRun));
                return;
            default:
                throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {contentType})");
        }
    }

    /// <summary>True for <c>?dryRun=All</c> (any other value was refused before the request got here).</summary>
    private static bool DryRun(HttpContext context) => context.Request.Query["dryRun"].FirstOrDefault() == "All";

    private static async Task<JsonArray> ReadArrayAsync(HttpContext context)
    {
        var text = await ReadBodyTextAsync(context);
        try
        {
            return JsonNode.Parse(text) as JsonArray
                ?? throw ApiError.BadRequest("a JSON patch must be an array of operations");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw ApiError.BadRequest("the body is not valid JSON: " + ex.Message);
        }
    }

    /// <summary>
    /// A merge, strategic or JSON patch of a role or binding: computed on a copy first, so the escalation check sees the
    /// result, then written.
    /// </summary>
    private async Task PatchRbacAsync(HttpContext context, ResourceType type, string? ns, string name, bool status, string? manager, string? contentType)
    {
        var live = store.Get(type, ns, name) ?? throw ApiError.NotFound(type, name);
        var after = (JsonObject)live.DeepClone();
        JsonObject? patch = null;
        JsonArray? operations = null;
        switch (contentType)
        {
            case "application/json-patch+json":
                operations = await ReadArrayAsync(context);
                Store.JsonPatch.Apply(type, name, after, operations);
                break;
            case "application/merge-patch+json" or "application/strategic-merge-patch+json":
                patch = CheckFields(context, type, await ReadBodyAsync(context), apply: false);
                FieldOwnership.Merge(type.Kind, after, patch);
                break;
            default:
                throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {contentType})");
        }

        CheckEscalation(context, type, ns, name, after);
        var written = operations is not null
            ? store.JsonPatch(type, ns, name, operations, status, manager ?? DefaultManager(context), DryRun(context))
            : contentType == "application/merge-patch+json"
                ? store.MergePatch(type, ns, name, patch!, status, manager ?? DefaultManager(context), DryRun(context))
                : store.StrategicPatch(type, ns, name, patch!, status, manager ?? DefaultManager(context), DryRun(context));
        await WriteAsync(context, 200, written);
    }
}
