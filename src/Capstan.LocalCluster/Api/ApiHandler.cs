using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <summary>
/// The Kubernetes REST API over the object store: discovery, CRUD, server-side apply, merge patch, status
/// subresources, label and field selectors, watch streams with bookmarks, and the <c>/capstan/*</c> control endpoints.
/// </summary>
internal sealed class ApiHandler(ObjectStore store, FaultInjector faults, ImageCatalog images, SimulationTiming timing, Func<string> serverAddress)
{
    /// <summary>Sets an autoscaler's simulated metric (namespace, name, replicas or null to return to minReplicas).</summary>
    public Action<string, string, int?> Autoscale { get; init; } = (_, _, _) => { };

    public async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        try
        {
            if (!path.StartsWith("/capstan/", StringComparison.Ordinal) && faults.NextHttpFault(path) is { } fault)
            {
                if (fault.Hang > TimeSpan.Zero)
                {
                    await Task.Delay(fault.Hang, context.RequestAborted);
                }
                else
                {
                    if (fault.RetryAfterSeconds is { } retry)
                    {
                        context.Response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
                    }

                    throw new ApiError(fault.Status, fault.Status == 429 ? "TooManyRequests" : "InternalError", $"injected fault: HTTP {fault.Status}");
                }
            }

            await RouteAsync(context, path);
        }
        catch (ApiError error)
        {
            if (!context.Response.HasStarted)
            {
                await WriteAsync(context, error.Code, error.ToStatus());
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private async Task RouteAsync(HttpContext context, string path)
    {
        var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        switch (segments)
        {
            case ["version"]:
                await WriteAsync(context, 200, new JsonObject { ["major"] = "1", ["minor"] = "32", ["gitVersion"] = "v1.32.0-capstan-local", ["platform"] = "linux/amd64" });
                return;
            case ["healthz"] or ["readyz"] or ["livez"]:
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("ok", context.RequestAborted);
                return;
            case ["api"]:
                await WriteAsync(context, 200, Discovery.CoreVersions(serverAddress()));
                return;
            case ["apis"]:
                await WriteAsync(context, 200, Discovery.Groups());
                return;
            case ["api", "v1"]:
                await WriteAsync(context, 200, Discovery.Resources(string.Empty, "v1"));
                return;
            case ["apis", var g]:
                await WriteAsync(context, 200, Discovery.Group(g) ?? throw new ApiError(404, "NotFound", "the server could not find the requested resource"));
                return;
            case ["apis", var g, var v] when ResourceTypes.All.Any(r => r.Group == g && r.Version == v):
                await WriteAsync(context, 200, Discovery.Resources(g, v));
                return;
            case ["capstan", "faults"]:
                await FaultsAsync(context);
                return;
            case ["capstan", "images"]:
                await ImagesAsync(context);
                return;
            case ["capstan", "autoscale"] when context.Request.Method == "POST":
                var want = await ReadBodyAsync(context);
                Autoscale(
                    want["namespace"]?.GetValue<string>() ?? throw ApiError.BadRequest("namespace is required"),
                    want["name"]?.GetValue<string>() ?? throw ApiError.BadRequest("name is required"),
                    want["replicas"] is null ? null : (int?)(JsonNumber.Long(want["replicas"]) ?? throw ApiError.BadRequest("replicas must be a number")));
                store.Touch();
                await WriteAsync(context, 200, want);
                return;
            case ["api", "v1", "namespaces", _, "pods", _, "log" or "exec" or "attach" or "portforward"]:
                // Pods here are simulated: no process runs, so there is nothing to read or to enter.
                throw new ApiError(501, "NotImplemented", $"the embedded cluster runs no containers, so {segments[6]} is not available for pod {segments[5]}");
            case ["api", "v1", .. var rest]:
                await ResourceAsync(context, string.Empty, "v1", rest);
                return;
            case ["apis", var group, var version, .. var rest]:
                await ResourceAsync(context, group, version, rest);
                return;
            default:
                throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
    }

    private async Task ResourceAsync(HttpContext context, string group, string version, string[] rest)
    {
        string? ns = null;
        string plural;
        string? name = null;
        string? subresource;
        switch (rest)
        {
            case ["namespaces", var n, var p, .. var tail] when p != "status":
                ns = n;
                plural = p;
                name = tail.ElementAtOrDefault(0);
                subresource = tail.ElementAtOrDefault(1);
                if (tail.Length > 2)
                {
                    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
                }

                break;
            case [var p, .. var tail]:
                plural = p;
                name = tail.ElementAtOrDefault(0);
                subresource = tail.ElementAtOrDefault(1);
                break;
            default:
                throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }

        var type = ResourceTypes.Find(group, version, plural) ?? throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        if (subresource is not (null or "status" or "scale") || (subresource == "scale" && !type.HasScale))
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }

        var status = subresource == "status";
        if (subresource == "scale")
        {
            await ScaleAsync(context, type, type.Namespaced ? ns : null, name!, context.Request.Query["fieldManager"].FirstOrDefault());
            return;
        }

        if (type.Namespaced && ns is null && name is not null)
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }

        if (!type.Namespaced)
        {
            ns = null;
        }

        var request = context.Request;
        var manager = request.Query["fieldManager"].FirstOrDefault();
        switch (request.Method)
        {
            case "GET" when name is null && IsTrue(request.Query["watch"].FirstOrDefault()):
                await WatchAsync(context, type, ns);
                return;
            case "GET" when name is null:
                await ListAsync(context, type, ns);
                return;
            case "GET":
                await WriteAsync(context, 200, store.Get(type, ns, name) ?? throw ApiError.NotFound(type, name));
                return;
            case "POST" when name is null:
                await WriteAsync(context, 201, store.Create(type, ns, await ReadBodyAsync(context), manager ?? "unknown"));
                return;
            case "PUT" when name is not null:
                await WriteAsync(context, 200, store.Update(type, ns, name, await ReadBodyAsync(context), status, manager ?? "unknown"));
                return;
            case "PATCH" when name is not null:
                await PatchAsync(context, type, ns, name, status, manager);
                return;
            case "DELETE" when name is not null:
                var options = request.ContentLength > 0 ? await ReadBodyAsync(context) : [];
                var propagation = options["propagationPolicy"]?.GetValue<string>() ?? request.Query["propagationPolicy"].FirstOrDefault() ?? "Background";
                if (propagation is not ("Background" or "Foreground" or "Orphan"))
                {
                    throw ApiError.BadRequest($"propagationPolicy must be Background, Foreground or Orphan, not {propagation}");
                }

                var grace = JsonNumber.Long(options["gracePeriodSeconds"])
                    ?? (long.TryParse(request.Query["gracePeriodSeconds"].FirstOrDefault(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var g) ? g : null);
                if (grace < 0)
                {
                    throw ApiError.BadRequest($"gracePeriodSeconds must not be negative, not {grace}");
                }

                await WriteAsync(context, 200, store.Delete(type, ns, name, propagation, grace));
                return;
            default:
                throw new ApiError(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }
    }

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
                        var applied = store.Apply(type, ns, name, new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind, ["spec"] = new JsonObject { ["replicas"] = replicasNode.DeepClone() } }, manager, force);
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

            live = store.MergePatch(type, ns, name, new JsonObject { ["spec"] = new JsonObject { ["replicas"] = replicas } }, statusOnly: false, manager ?? "unknown");
        }

        await WriteAsync(context, 200, Scale(type, live));
    }

    private static JsonObject Scale(ResourceType type, JsonObject obj) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = obj["metadata"]?["name"]?.DeepClone(),
            ["namespace"] = obj["metadata"]?["namespace"]?.DeepClone(),
            ["uid"] = obj["metadata"]?["uid"]?.DeepClone(),
            ["resourceVersion"] = obj["metadata"]?["resourceVersion"]?.DeepClone(),
            ["creationTimestamp"] = obj["metadata"]?["creationTimestamp"]?.DeepClone(),
        },
        ["spec"] = new JsonObject { ["replicas"] = JsonNumber.Long(obj["spec"]?["replicas"]) ?? 1 },
        ["status"] = new JsonObject
        {
            ["replicas"] = JsonNumber.Long(obj["status"]?["replicas"]) ?? 0,
            ["selector"] = string.Join(",", (obj["spec"]?["selector"]?["matchLabels"] as JsonObject ?? []).Select(kv => $"{kv.Key}={kv.Value}")),
        },
    };

    private async Task PatchAsync(HttpContext context, ResourceType type, string? ns, string name, bool status, string? manager)
    {
        var contentType = context.Request.ContentType?.Split(';')[0].Trim();
        var body = await ReadBodyAsync(context);
        var dryRun = context.Request.Query["dryRun"].FirstOrDefault() == "All";
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
                await WriteAsync(context, 200, store.MergePatch(type, ns, name, body, status, manager ?? "unknown"));
                return;
            case "application/strategic-merge-patch+json":
                await WriteAsync(context, 200, store.StrategicPatch(type, ns, name, body, status, manager ?? "unknown"));
                return;
            default:
                throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/merge-patch+json, application/strategic-merge-patch+json (got {contentType})");
        }
    }

    private async Task ListAsync(HttpContext context, ResourceType type, string? ns)
    {
        var labels = LabelQuery.Parse(context.Request.Query["labelSelector"].FirstOrDefault());
        var fields = FieldQuery(context.Request.Query["fieldSelector"].FirstOrDefault());
        var (items, rv) = store.ListShared(type, ns, labels, fields);

        // Written item by item: stored objects are shared, not copied, and a JSON node can only have one parent.
        var sb = new StringBuilder(64 + (items.Count * 1024));
        sb.Append("{\"kind\":\"").Append(type.Kind).Append("List\",\"apiVersion\":\"").Append(type.ApiVersion)
            .Append("\",\"metadata\":{\"resourceVersion\":\"").Append(rv.ToString(CultureInfo.InvariantCulture)).Append("\"},\"items\":[");
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(items[i].ToJsonString());
        }

        sb.Append("]}");
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(sb.ToString(), context.RequestAborted);
    }

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns)
    {
        var query = context.Request.Query;
        var labels = LabelQuery.Parse(query["labelSelector"].FirstOrDefault());
        var fields = FieldQuery(query["fieldSelector"].FirstOrDefault());
        var from = long.TryParse(query["resourceVersion"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var rv) ? rv : 0;
        var bookmarks = IsTrue(query["allowWatchBookmarks"].FirstOrDefault());
        var timeout = int.TryParse(query["timeoutSeconds"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t > 0 ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        cts.CancelAfter(timeout);
        var reader = store.Watch(type, ns, from, cts.Token);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.Body.FlushAsync(cts.Token);
        var lastRv = Math.Max(from, store.ResourceVersion);
        try
        {
            while (!cts.IsCancellationRequested)
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
                if (bookmarks)
                {
                    wait.CancelAfter(timing.Bookmark);
                }

                StoreEvent e;
                try
                {
                    e = await reader.ReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cts.IsCancellationRequested)
                {
                    await WriteLineAsync(context, new JsonObject
                    {
                        ["type"] = "BOOKMARK",
                        ["object"] = new JsonObject
                        {
                            ["kind"] = type.Kind,
                            ["apiVersion"] = type.ApiVersion,
                            ["metadata"] = new JsonObject { ["resourceVersion"] = Math.Max(lastRv, store.ResourceVersion).ToString(CultureInfo.InvariantCulture) },
                        },
                    }, cts.Token);
                    continue;
                }

                lastRv = e.ResourceVersion;
                if (labels.Matches(e.Object) && (fields?.Invoke(e.Object) ?? true))
                {
                    await WriteLineAsync(context, new JsonObject { ["type"] = e.Type, ["object"] = e.Object }, cts.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (System.Threading.Channels.ChannelClosedException)
        {
        }
    }

    private async Task FaultsAsync(HttpContext context)
    {
        switch (context.Request.Method)
        {
            case "GET":
                await WriteAsync(context, 200, faults.Describe());
                return;
            case "POST":
                faults.Add(await ReadBodyAsync(context));
                await WriteAsync(context, 200, faults.Describe());
                return;
            case "DELETE":
                faults.Clear();
                await WriteAsync(context, 200, faults.Describe());
                return;
            default:
                throw new ApiError(405, "MethodNotAllowed", "GET, POST or DELETE");
        }
    }

    private async Task ImagesAsync(HttpContext context)
    {
        if (context.Request.Method == "POST")
        {
            var body = await ReadBodyAsync(context);
            images.Set(body["images"] is JsonArray list ? list.Select(i => i!.GetValue<string>()) : null);
        }

        await WriteAsync(context, 200, images.Describe());
    }

    private static Func<JsonObject, bool>? FieldQuery(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var tests = new List<Func<JsonObject, bool>>();
        foreach (var term in text.Split(','))
        {
            var negate = term.Contains("!=", StringComparison.Ordinal);
            var parts = term.Split(negate ? "!=" : term.Contains("==", StringComparison.Ordinal) ? "==" : "=", 2);
            if (parts.Length != 2)
            {
                throw ApiError.BadRequest($"invalid field selector \"{text}\"");
            }

            var (field, value) = (parts[0].Trim(), parts[1].Trim());
            Func<JsonObject, string?> get = field switch
            {
                "metadata.name" => o => o["metadata"]?["name"]?.GetValue<string>(),
                "metadata.namespace" => o => o["metadata"]?["namespace"]?.GetValue<string>(),
                "status.phase" => o => o["status"]?["phase"]?.GetValue<string>(),
                "spec.nodeName" => o => o["spec"]?["nodeName"]?.GetValue<string>(),
                "involvedObject.kind" or "involvedObject.namespace" or "involvedObject.name" or "involvedObject.uid" or "involvedObject.apiVersion" or "reason" or "type" or "source"
                    => o => (field == "source" ? o["source"]?["component"] : field.StartsWith("involvedObject.", StringComparison.Ordinal) ? o["involvedObject"]?[field["involvedObject.".Length..]] : o[field])?.GetValue<string>(),
                _ => throw ApiError.BadRequest($"field label not supported: {field}"),
            };
            tests.Add(o => (get(o) == value) != negate);
        }

        return o => tests.TrueForAll(t => t(o));
    }

    private static bool IsTrue(string? value) => value is "true" or "1";

    private static async Task<JsonObject> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentType?.Contains("protobuf", StringComparison.Ordinal) == true ||
            context.Request.ContentType?.Contains("cbor", StringComparison.Ordinal) == true)
        {
            // Only JSON and YAML bodies are understood; clients that prefer protobuf fall back to JSON on 415.
            throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/strategic-merge-patch+json");
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted);
        if (text.TrimStart().StartsWith('{'))
        {
            try
            {
                return JsonNode.Parse(text) as JsonObject ?? throw ApiError.BadRequest("the body must be an object");
            }
            catch (JsonException ex)
            {
                throw ApiError.BadRequest("the body is not valid JSON: " + ex.Message);
            }
        }

        var diagnostics = new DiagnosticBag();
        var node = YamlReader.ReadSingle(text, "body", diagnostics);
        if (diagnostics.HasErrors || node is not ValueMap)
        {
            throw ApiError.BadRequest("the body is not a YAML or JSON object" + (diagnostics.HasErrors ? ": " + diagnostics.Items[0].Message : string.Empty));
        }

        return (JsonObject)ValueNodeJson.ToJson(node)!;
    }

    private static async Task WriteAsync(HttpContext context, int code, JsonObject body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    private static async Task WriteLineAsync(HttpContext context, JsonObject body, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync(body.ToJsonString() + "\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
