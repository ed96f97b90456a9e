using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Auth;
using Capstan.LocalCluster.Schema;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Capstan.LocalCluster.Api;

/// <summary>
/// The Kubernetes REST API over the object store: discovery, CRUD, server-side apply, merge patch, status
/// subresources, label and field selectors, watch streams with bookmarks, and the <c>/capstan/*</c> control endpoints.
/// </summary>
internal sealed partial class ApiHandler(ObjectStore store, FaultInjector faults, ImageCatalog images, SimulationTiming timing, Func<string> serverAddress, Authenticator authenticator)
{
    private const string UserKey = "capstan.user";

    private readonly Authorizer _authorizer = new(store);

    /// <summary>Sets an autoscaler's simulated metric (namespace, name, replicas or null to return to minReplicas).</summary>
    public Action<string, string, int?> Autoscale { get; init; } = (_, _, _) => { };

    /// <summary>
    /// What runs in front of every endpoint, as kube-apiserver's filter chain: authentication and authorization, then
    /// injected faults (never on <c>/capstan/*</c>), and errors written as Status objects.
    /// </summary>
    public async Task FilterAsync(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path.Value ?? "/";
        var request = RequestInfo.Parse(context.Request.Method, path, name => context.Request.Query[name].FirstOrDefault());
        try
        {
            Authorize(context, request);
            if (!path.StartsWith("/capstan/", StringComparison.Ordinal) && faults.NextHttpFault(path) is { } fault)
            {
                if (fault.Hang > TimeSpan.Zero)
                {
                    await Task.Delay(fault.Hang, context.RequestAborted);
                }
                else if (fault.Status == FaultInjector.ResetStatus)
                {
                    context.Abort();
                    return;
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

            await next(context);
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
        finally
        {
            if (request.IsResourceRequest)
            {
                Metrics.Count(request, context.Request.ContentType, context.Response.StatusCode);
            }
        }
    }

    /// <summary>The server's request counts, served at <c>/metrics</c> as kube-apiserver's <c>apiserver_request_total</c>.</summary>
    public RequestMetrics Metrics { get; init; } = new();

    /// <summary>The pods' simulated traffic, served at <c>/capstan/pod-metrics</c>.</summary>
    public PodTraffic? Traffic { get; init; }

    /// <summary>
    /// Authentication and authorization, in front of everything else as in kube-apiserver's filter chain: invalid
    /// credentials are 401; a request without credentials is served only what the public-info role allows (health
    /// and version), else 401; an authenticated user gets 403 for what no role of theirs allows.
    /// </summary>
    private void Authorize(HttpContext context, RequestInfo request)
    {
        var user = authenticator.Authenticate(context.Request.Headers.Authorization.FirstOrDefault()) ?? throw ApiError.Unauthorized();
        user = Impersonated(context.Request.Headers, user);
        context.Items[UserKey] = user;
        if (!_authorizer.Allows(user, request))
        {
            throw ReferenceEquals(user, UserInfo.Anonymous) ? ApiError.Unauthorized() : Authorizer.Forbidden(user, request);
        }
    }

    /// <summary>
    /// Impersonation as kube-apiserver's filter does it: with <c>Impersonate-User</c> (and optionally
    /// <c>Impersonate-Group</c>, <c>Impersonate-Uid</c>, <c>Impersonate-Extra-*</c>) the request acts as that user, once
    /// the authenticated user is allowed to <c>impersonate</c> each of them (users, groups, uids and userextras); else 403
    /// naming what it may not impersonate. Groups or a uid without a user are a 400.
    /// </summary>
    private UserInfo Impersonated(IHeaderDictionary headers, UserInfo caller)
    {
        var name = headers["Impersonate-User"].FirstOrDefault() is { Length: > 0 } wanted ? wanted : null;
        var groups = headers["Impersonate-Group"].Where(g => !string.IsNullOrEmpty(g)).Select(g => g!).ToList();
        var uid = headers["Impersonate-Uid"].FirstOrDefault();
        var extras = headers.Keys.Where(k => k.StartsWith("Impersonate-Extra-", StringComparison.OrdinalIgnoreCase)).ToList();
        if (name is null)
        {
            return groups.Count > 0 || uid is not null || extras.Count > 0
                ? throw new ApiError(400, "BadRequest", "requested [Impersonate-Group Impersonate-Uid Impersonate-Extra-] without impersonating a user")
                : caller;
        }

        void Check(string resource, string group, string what, string subresource = "")
        {
            var request = new RequestInfo(true, "impersonate", string.Empty, group, string.Empty, resource, subresource, what);
            if (!_authorizer.Allows(caller, request))
            {
                var full = subresource.Length > 0 ? $"{resource}/{subresource}" : resource;
                throw new ApiError(403, "Forbidden", $"{resource}{(group.Length > 0 ? "." + group : string.Empty)} \"{what}\" is forbidden: User \"{caller.Name}\" cannot impersonate resource \"{full}\" in API group \"{group}\" at the cluster scope");
            }
        }

        Check("users", string.Empty, name);
        foreach (var group in groups)
        {
            Check("groups", string.Empty, group);
        }

        if (uid is not null)
        {
            Check("uids", "authentication.k8s.io", uid);
        }

        // An extra is checked as kube-apiserver checks it: the key as the subresource, each value as the name.
        foreach (var key in extras)
        {
            foreach (var value in headers[key].Where(v => v is not null))
            {
                Check("userextras", "authentication.k8s.io", value!, Uri.UnescapeDataString(key["Impersonate-Extra-".Length..]).ToLowerInvariant());
            }
        }

        return new UserInfo(name, uid ?? string.Empty, [.. groups, name == UserInfo.Anonymous.Name ? "system:unauthenticated" : "system:authenticated"]);
    }

    /// <summary>The endpoints: discovery, OpenAPI, the control endpoints and the resources (routes as kube-apiserver's).</summary>
    public void MapEndpoints(IEndpointRouteBuilder app)
    {
        app.MapGet("/version", context => WriteAsync(context, 200, new JsonObject { ["major"] = "1", ["minor"] = "32", ["gitVersion"] = "v1.32.0-capstan-local", ["platform"] = "linux/amd64" }));
        foreach (var health in new[] { "/healthz", "/readyz", "/livez" })
        {
            app.MapGet(health, async context =>
            {
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("ok", context.RequestAborted);
            });
        }

        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4";
            await context.Response.WriteAsync(Metrics.Text(), context.RequestAborted);
        });
        app.MapGet("/api", context => WriteAsync(context, 200, Discovery.CoreVersions(serverAddress())));
        app.MapGet("/apis", context => WriteAsync(context, 200, Discovery.Groups(store.Types)));
        app.MapGet("/api/v1", context => WriteAsync(context, 200, Discovery.Resources(store.Types, string.Empty, "v1")));
        app.MapGet("/apis/{group}", context => WriteAsync(context, 200, Discovery.Group(store.Types, Route(context, "group")) ?? throw NotFound()));
        app.MapGet("/apis/{group}/{version}", context =>
        {
            var (group, version) = (Route(context, "group"), Route(context, "version"));
            return group == Discovery.Reviews && version == "v1" ? WriteAsync(context, 200, Discovery.ReviewResourceList())
                : store.Types.All.Any(r => r.Group == group && r.Version == version) ? WriteAsync(context, 200, Discovery.Resources(store.Types, group, version)) : throw NotFound();
        });

        // kube-apiserver serves v2 as JSON or protobuf; this server only as JSON (kubectl reads v3).
        app.MapGet("/openapi/v2", context => AcceptsJson(context.Request.Headers.Accept.ToString())
            ? WriteTextAsync(context, OpenApi.V2Document)
            : throw new ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json"));
        app.MapGet("/openapi/v3", context => WriteAsync(context, 200, OpenApi.V3Index(store.Types)));
        app.MapGet("/openapi/v3/api/{version}", context => WriteTextAsync(context, OpenApi.V3Document(store.Types, Route(context, "version")) ?? throw NotFound()));
        app.MapGet("/openapi/v3/apis/{group}/{version}", context =>
            WriteTextAsync(context, OpenApi.V3Document(store.Types, $"{Route(context, "group")}/{Route(context, "version")}") ?? throw NotFound()));

        app.MapGet("/capstan/pod-metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4";
            await context.Response.WriteAsync(Traffic?.Text() ?? string.Empty, context.RequestAborted);
        });
        app.MapMethods("/capstan/faults", ["GET", "POST", "DELETE"], FaultsAsync);
        app.MapMethods("/capstan/images", ["GET", "POST"], ImagesAsync);
        app.MapPost("/capstan/autoscale", async context =>
        {
            var want = await ReadBodyAsync(context);
            Autoscale(
                want["namespace"]?.GetValue<string>() ?? throw ApiError.BadRequest("namespace is required"),
                want["name"]?.GetValue<string>() ?? throw ApiError.BadRequest("name is required"),
                want["replicas"] is null ? null : (int?)(JsonNumber.Long(want["replicas"]) ?? throw ApiError.BadRequest("replicas must be a number")));
            store.Touch();
            await WriteAsync(context, 200, want);
        });

        // Pods here are simulated: no process runs, so there is nothing to read or to enter.
        foreach (var action in new[] { "log", "exec", "attach", "portforward" })
        {
            app.Map($"/api/v1/namespaces/{{namespace}}/pods/{{name}}/{action}", context =>
                throw new ApiError(501, "NotImplemented", $"the embedded cluster runs no containers, so {action} is not available for pod {Route(context, "name")}"));
        }

        app.MapPost("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", SelfSubjectAccessReviewAsync);
        app.MapPost("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", SelfSubjectRulesReviewAsync);

        // Resources: /api/v1/… (the core group) and /apis/GROUP/VERSION/…, namespaced or not, with a subresource.
        foreach (var prefix in new[] { "/api/{version}", "/apis/{group}/{version}" })
        {
            const string Namespaced = "/namespaces/{namespace}/{resource}";
            foreach (var pattern in new[] { Namespaced, Namespaced + "/{name}", Namespaced + "/{name}/{subresource}", "/{resource}", "/{resource}/{name}", "/{resource}/{name}/{subresource}" })
            {
                app.Map(prefix + pattern, ResourceAsync);
            }
        }

        app.MapFallback(_ => throw NotFound());
    }

    private static string Route(HttpContext context, string name) => context.GetRouteValue(name) as string ?? string.Empty;

    private static ApiError NotFound() => new(404, "NotFound", "the server could not find the requested resource");

    private async Task ResourceAsync(HttpContext context)
    {
        var group = Route(context, "group");
        var version = Route(context, "version");
        var ns = context.GetRouteValue("namespace") as string;
        var plural = Route(context, "resource");
        var name = context.GetRouteValue("name") as string;
        var subresource = context.GetRouteValue("subresource") as string;
        if (ns is not null && name is null && plural is "status" or "finalize")
        {
            // /api/v1/namespaces/NAME/status: a namespace's subresource, not a resource in the namespace.
            (plural, name, subresource, ns) = ("namespaces", ns, plural, null);
        }

        var type = store.Types.Find(group, version, plural) ?? throw NotFound();
        if (subresource is not (null or "status" or "scale") || (subresource == "scale" && !type.HasScale) || (subresource == "status" && type.Custom is not null && !type.HasStatus))
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

        if (!type.Namespaced && ns is not null)
        {
            // A cluster-scoped kind has no namespaced path (authorization would otherwise judge it in that namespace).
            throw NotFound();
        }

        if (!type.Namespaced)
        {
            ns = null;
        }

        var request = context.Request;
        var dryRun = false;
        foreach (var value in request.Query["dryRun"])
        {
            // As kube-apiserver: All is the only dry run there is; anything else is refused, never ignored.
            dryRun = value == "All" ? true : throw new ApiError(400, "BadRequest", $"Invalid dry run value: \"{value}\": supported values: \"All\"");
        }

        var manager = request.Query["fieldManager"].FirstOrDefault();
        switch (request.Method)
        {
            case "GET" when name is null && IsTrue(request.Query["watch"].FirstOrDefault()):
                await WatchAsync(context, type, ns);
                return;
            case "GET" when name is null:
                await ListAsync(context, type, ns);
                return;
            case "GET" when TablePrinter.Wanted(request.Headers.Accept.ToString()):
                var row = store.Get(type, ns, name) ?? throw ApiError.NotFound(type, name);
                await WriteAsync(context, 200, TablePrinter.Table(type, [row], null, request.Query["includeObject"].FirstOrDefault(), store.Clock.GetUtcNow()));
                return;
            case "GET":
                // The stored object itself (only read from here on), so that its protobuf message is encoded once.
                await WriteAsync(context, 200, store.GetShared(type, ns, name) ?? throw ApiError.NotFound(type, name));
                return;
            case "POST" when name is null:
                var created = CheckFields(context, type, await ReadBodyAsync(context), apply: false);
                CheckEscalation(context, type, ns, created["metadata"]?["name"]?.GetValue<string>() ?? string.Empty, created);
                await WriteAsync(context, 201, store.Create(type, ns, created, manager ?? DefaultManager(context), dryRun));
                return;
            case "PUT" when name is not null:
                var replaced = CheckFields(context, type, await ReadBodyAsync(context), apply: false);
                ObjectStore.CheckUrlNames(type, ns, name, replaced, nameRequired: true);
                CheckEscalation(context, type, ns, name, replaced);
                await WriteAsync(context, 200, store.Update(type, ns, name, replaced, status, manager ?? DefaultManager(context), dryRun));
                return;
            case "PATCH" when name is not null:
                await PatchAsync(context, type, ns, name, status, manager);
                return;
            case "DELETE" when name is not null:
                var (propagation, grace, dryRunBody) = await DeleteOptionsAsync(context);
                await WriteAsync(context, 200, store.Delete(type, ns, name, propagation, grace, dryRun || dryRunBody));
                return;
            case "DELETE" when type.Kind != "Namespace":
                await DeleteCollectionAsync(context, type, ns, dryRun);
                return;
            default:
                throw new ApiError(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }
    }

    /// <summary>A delete's options, from its DeleteOptions body or the query: the propagation policy and the grace period.</summary>
    private static async Task<(string Propagation, long? Grace, bool DryRun)> DeleteOptionsAsync(HttpContext context)
    {
        var request = context.Request;
        var options = request.ContentLength > 0 ? await ReadBodyAsync(context) : [];

        // kubectl delete --dry-run=server says it in the DeleteOptions body, not the query.
        var dryRun = false;
        foreach (var value in options["dryRun"] as JsonArray ?? [])
        {
            dryRun = value?.ToString() == "All" ? true : throw new ApiError(400, "BadRequest", $"Invalid dry run value: \"{value}\": supported values: \"All\"");
        }

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

        return (propagation, grace, dryRun);
    }

    /// <summary>
    /// Deletes every object of the collection the label and field selectors choose (all of them without one), as
    /// kube-apiserver's deletecollection does, and answers the list of what it deleted.
    /// </summary>
    private async Task DeleteCollectionAsync(HttpContext context, ResourceType type, string? ns, bool dryRun)
    {
        var (propagation, grace, dryRunBody) = await DeleteOptionsAsync(context);
        dryRun |= dryRunBody;
        var labels = LabelQuery.Parse(context.Request.Query["labelSelector"].FirstOrDefault());
        var fields = FieldQuery(context.Request.Query["fieldSelector"].FirstOrDefault());
        var (items, _) = store.ListShared(type, ns, labels, fields);
        var deleted = new JsonArray();
        foreach (var item in items)
        {
            try
            {
                deleted.Add(store.Delete(type, item.Kube.Namespace, item.Kube.Name, propagation, grace, dryRun).DeepClone());
            }
            catch (ApiError gone) when (gone.Code == 404)
            {
                // Deleted meanwhile by someone else: not this request's to report.
            }
        }

        await WriteAsync(context, 200, new JsonObject
        {
            ["kind"] = type.Kind + "List",
            ["apiVersion"] = type.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = store.ResourceVersion.ToString(CultureInfo.InvariantCulture) },
            ["items"] = deleted,
        });
    }

    private static bool IsTrue(string? value) => RequestInfo.IsTrue(value);

    /// <summary>
    /// The field manager of an update that names none: as kube-apiserver, the User-Agent up to its first '/'
    /// (<c>kubectl</c>, <c>OpenAPI-Generator</c>), else <c>unknown</c>.
    /// </summary>
    private static string DefaultManager(HttpContext context) =>
        context.Request.Headers.UserAgent.ToString().Split('/')[0].Trim() is { Length: > 0 } agent ? agent : "unknown";

    /// <summary>RBAC escalation prevention for a role or binding about to be written (see <see cref="Authorizer.Escalation"/>).</summary>
    private void CheckEscalation(HttpContext context, ResourceType type, string? ns, string name, JsonObject obj)
    {
        if (type.Group == "rbac.authorization.k8s.io" && context.Items[UserKey] is UserInfo user && _authorizer.Escalation(user, type, ns, name, obj) is { } refused)
        {
            throw refused;
        }
    }

    private static bool AcceptsJson(string accept) =>
        accept.Length == 0 || accept.Contains("application/json", StringComparison.Ordinal) || accept.Contains("*/*", StringComparison.Ordinal);

    /// <summary>
    /// Field validation as kube-apiserver does it (<c>fieldValidation=Strict|Warn|Ignore</c>, Warn when not given):
    /// fields the schema does not declare are refused (Strict, 400), or dropped with a <c>Warning</c> header each
    /// (Warn), or dropped silently (Ignore). Returns the body, without the dropped fields.
    /// </summary>
    private static JsonObject CheckFields(HttpContext context, ResourceType type, JsonObject body, bool apply)
    {
        var mode = context.Request.Query["fieldValidation"].FirstOrDefault() ?? "Warn";
        if (mode is not ("Strict" or "Warn" or "Ignore"))
        {
            throw ApiError.BadRequest($"fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", not \"{mode}\"");
        }

        var unknown = type.Custom is { } custom ? custom.UnknownFields(body) : ApiSchema.Default.UnknownFields(type.Kind, body, prune: mode != "Strict");
        if (unknown.Count == 0)
        {
            return body;
        }

        switch (mode)
        {
            case "Strict" when apply:
                throw ApiError.BadRequest($"failed to create typed patch object ({type.Group}/{type.Version}, Kind={type.Kind}): " +
                    string.Join(", ", unknown.Select(u => $".{u}: field not declared in schema")));
            case "Strict":
                throw ApiError.BadRequest($"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: strict decoding error: " +
                    string.Join(", ", unknown.Select(u => $"unknown field \"{u}\"")));
            case "Warn":
                foreach (var field in unknown)
                {
                    context.Response.Headers.Append("Warning", $"299 - \"unknown field \\\"{field}\\\"\"");
                }

                break;
        }

        return body;
    }

    private static async Task WriteTextAsync(HttpContext context, string json)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json, context.RequestAborted);
    }

    /// <summary>
    /// How a body is written, as Go's encoder does: a quote inside a string is <c>\"</c> (not <c>\u0022</c>), and each
    /// body ends with a newline.
    /// </summary>
    private static readonly JsonSerializerOptions Wire = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes a body in protobuf when the client prefers it and the body's kind has a protobuf form (as kube-apiserver,
    /// which answers JSON for what has none), else in JSON.
    /// </summary>
    private static async Task WriteAsync(HttpContext context, int code, JsonObject body)
    {
        context.Response.StatusCode = code;
        if (Protobuf.Preferred(context.Request.Headers.Accept.ToString()) && EnvelopeOf(body) is { } encoded)
        {
            context.Response.ContentType = Protobuf.MediaType;
            await context.Response.Body.WriteAsync(encoded, context.RequestAborted);
            return;
        }

        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(Wire) + "\n", context.RequestAborted);
    }

    private static async Task WriteLineAsync(HttpContext context, JsonObject body, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync(body.ToJsonString(Wire) + "\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
