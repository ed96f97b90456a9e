using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Kubernetes;

/// <summary>Timeouts, retries and the request budget of a client.</summary>
public sealed record KubeClientOptions
{
    /// <summary>How long one request may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a request is tried on 429, 5xx, connection errors and timeouts.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The first pause between tries (doubling, capped at 5 s) when the server gives no Retry-After.</summary>
    public TimeSpan Backoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Requests per second, sustained.</summary>
    public double Qps { get; init; } = 50;

    /// <summary>Requests that may go at once before the QPS limit applies.</summary>
    public int Burst { get; init; } = 300;

    /// <summary>The field manager of server-side apply.</summary>
    public string FieldManager { get; init; } = "capstan";

    /// <summary>The clock of backoff and rate limiting.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// Capstan's Kubernetes REST client, used for every cluster, real or local: server-side apply, get, list, delete,
/// watch and rollout status over HTTP+JSON, with retries on 429/5xx/timeouts honouring Retry-After, a per-cluster
/// request budget and typed errors. TLS is verified against the kubeconfig's CA (or the system's), never skipped
/// unless the kubeconfig says insecure-skip-tls-verify.
/// </summary>
public sealed partial class KubeClient : IClusterClient
{
    private static readonly MediaTypeWithQualityHeaderValue JsonType = new("application/json");

    private readonly HttpClient _http;
    private readonly ClusterConnection _connection;
    private readonly KubeClientOptions _options;
    private readonly RateLimiter _limiter;
    private readonly Dictionary<(string ApiVersion, string Kind), ApiResource> _resources = [];
    private readonly SemaphoreSlim _discovery = new(1, 1);
    private readonly CredentialsHandler _credentials;

    /// <summary>Creates a client for a connection.</summary>
    public KubeClient(ClusterConnection connection, KubeClientOptions? options = null)
    {
        _connection = connection;
        _options = options ?? new KubeClientOptions();
        _limiter = new RateLimiter(_options.Qps, _options.Burst, _options.Time);
        foreach (var r in ApiResources.Known)
        {
            _resources[(r.Group.Length == 0 ? r.Version : $"{r.Group}/{r.Version}", r.Kind)] = r;
        }

        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 32,
            EnableMultipleHttp2Connections = true,
            // HTTP/2 pings, as client-go sends them: a connection that died without a reset fails its watches
            // instead of leaving them waiting for ever.
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(15),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        };
        ConfigureTls(handler, connection);
        if (connection.ProxyUrl is { } proxy)
        {
            handler.Proxy = new System.Net.WebProxy(proxy);
            handler.UseProxy = true;
        }

        _credentials = new CredentialsHandler(connection, _options.Time) { InnerHandler = handler };
        _http = new HttpClient(new CountingHandler(this) { InnerHandler = _credentials }) { BaseAddress = connection.Server, Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("capstan/0.1");
    }

    /// <summary>How many times the kubeconfig's exec credential plugin has run.</summary>
    public int CredentialPluginRuns => _credentials.PluginRuns;

    /// <summary>Who this client authenticates as, for messages (the kubeconfig user, or the impersonated one).</summary>
    public string User => _connection.Impersonate?.User ?? _connection.UserName;

    /// <inheritdoc/>
    public Uri Server => _connection.Server;

    /// <inheritdoc/>
    public Task<JsonObject> ApplyAsync(JsonObject obj, bool force, bool dryRun, CancellationToken cancellationToken) =>
        ApplyAsync(obj, _options.FieldManager, force, dryRun, cancellationToken);

    /// <inheritdoc/>
    public Task<JsonObject> ApplyAsync(JsonObject obj, string fieldManager, CancellationToken cancellationToken) =>
        ApplyAsync(obj, fieldManager, force: false, dryRun: false, cancellationToken);

    private async Task<JsonObject> ApplyAsync(JsonObject obj, string fieldManager, bool force, bool dryRun, CancellationToken cancellationToken)
    {
        var reference = ObjectRef.Of(obj);
        var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
        // Strict: a field the server's schema does not know (a typo) is an error, never silently dropped.
        var query = $"?fieldManager={Uri.EscapeDataString(fieldManager)}&force={(force ? "true" : "false")}&fieldValidation=Strict" + (dryRun ? "&dryRun=All" : string.Empty);
        var body = obj.ToJsonString();
        var response = await SendAsync(
            () => new HttpRequestMessage(HttpMethod.Patch, resource.ItemPath(reference.Namespace, reference.Name) + query)
            {
                Content = new StringContent(body, Encoding.UTF8, "application/apply-patch+yaml"),
            },
            cancellationToken);
        return response!;
    }

    /// <inheritdoc/>
    public async Task<JsonObject> PatchAsync(ObjectRef reference, JsonObject mergePatch, string fieldManager, CancellationToken cancellationToken)
    {
        var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
        var body = mergePatch.ToJsonString();
        var response = await SendAsync(
            () => new HttpRequestMessage(HttpMethod.Patch, resource.ItemPath(reference.Namespace, reference.Name) + $"?fieldManager={Uri.EscapeDataString(fieldManager)}&fieldValidation=Strict")
            {
                Content = new StringContent(body, Encoding.UTF8, "application/merge-patch+json"),
            },
            cancellationToken);
        return response!;
    }

    /// <inheritdoc/>
    public async Task<JsonObject?> GetAsync(ObjectRef reference, CancellationToken cancellationToken)
    {
        var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
        try
        {
            return await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, resource.ItemPath(reference.Namespace, reference.Name)), cancellationToken);
        }
        catch (KubeNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public async Task<ObjectList> ListAsync(string apiVersion, string kind, string? ns, string? labelSelector, CancellationToken cancellationToken)
    {
        var resource = await ResourceAsync(apiVersion, kind, cancellationToken);
        var path = resource.CollectionPath(ns) + (labelSelector is null ? string.Empty : "?labelSelector=" + Uri.EscapeDataString(labelSelector));
        var list = (await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, path), cancellationToken))!;
        // Detach the items from the freshly parsed list instead of copying them.
        var array = list["items"] as JsonArray ?? [];
        var items = array.OfType<JsonObject>().ToList();
        array.Clear();
        foreach (var item in items)
        {
            item["apiVersion"] ??= apiVersion;
            item["kind"] ??= kind;
        }
        return new ObjectList(items, list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "0");
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(ObjectRef reference, Propagation propagation, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["kind"] = "DeleteOptions", ["apiVersion"] = "v1", ["propagationPolicy"] = propagation.ToString() }.ToJsonString();
        try
        {
            // A kind the server no longer serves (a custom resource whose definition went) has nothing left to delete.
            var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
            await SendAsync(
                () => new HttpRequestMessage(HttpMethod.Delete, resource.ItemPath(reference.Namespace, reference.Name))
                {
                    Content = new StringContent(body, Encoding.UTF8, "application/json"),
                },
                cancellationToken);
            return true;
        }
        catch (KubeNotFoundException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public async Task<bool> IsNamespacedAsync(string apiVersion, string kind, CancellationToken cancellationToken) =>
        (await ResourceAsync(apiVersion, kind, cancellationToken)).Namespaced;

    /// <inheritdoc/>
    public async Task<RolloutStatus> GetRolloutStatusAsync(string ns, string name, CancellationToken cancellationToken)
    {
        var deployment = await GetAsync(new ObjectRef("apps/v1", "Deployment", ns, name), cancellationToken)
            ?? throw new KubeNotFoundException($"deployments.apps \"{name}\" not found");
        var selector = deployment["spec"]?["selector"]?["matchLabels"] as JsonObject;
        var labelSelector = selector is null ? null : string.Join(",", selector.Select(kv => $"{kv.Key}={kv.Value}"));
        var uid = deployment["metadata"]?["uid"]?.GetValue<string>();
        var sets = (await ListAsync("apps/v1", "ReplicaSet", ns, labelSelector, cancellationToken)).Items.Where(rs => RolloutStatus.OwnedBy(rs, uid)).ToList();
        if (RolloutStatus.IsRecreate(deployment))
        {
            // A Recreate rollout counts the old pods still there: all of the Deployment's pods are needed.
            return RolloutStatus.From(deployment, sets, (await ListAsync("v1", "Pod", ns, labelSelector, cancellationToken)).Items);
        }

        // Pods only matter for naming a problem while the rollout is unfinished, and only those of the new ReplicaSet.
        var withoutPods = RolloutStatus.From(deployment, sets, []);
        var hash = sets.FirstOrDefault(rs => rs["metadata"]?["name"]?.GetValue<string>() == withoutPods.NewReplicaSet)?["metadata"]?["labels"]?["pod-template-hash"]?.GetValue<string>();
        if (withoutPods.Done || hash is null)
        {
            return withoutPods;
        }

        var podSelector = labelSelector is null ? $"pod-template-hash={hash}" : $"{labelSelector},pod-template-hash={hash}";
        var pods = (await ListAsync("v1", "Pod", ns, podSelector, cancellationToken)).Items;
        return RolloutStatus.From(deployment, sets, pods);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        _discovery.Dispose();
        return ValueTask.CompletedTask;
    }
}
