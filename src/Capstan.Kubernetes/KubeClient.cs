using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
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
    public int Burst { get; init; } = 100;

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
public sealed class KubeClient : IClusterClient
{
    private static readonly MediaTypeWithQualityHeaderValue JsonType = new("application/json");

    private readonly HttpClient _http;
    private readonly ClusterConnection _connection;
    private readonly KubeClientOptions _options;
    private readonly RateLimiter _limiter;
    private readonly Dictionary<(string ApiVersion, string Kind), ApiResource> _resources = [];
    private readonly SemaphoreSlim _discovery = new(1, 1);

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
        };
        ConfigureTls(handler, connection);
        _http = new HttpClient(new CountingHandler(this) { InnerHandler = handler }) { BaseAddress = connection.Server, Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("capstan/0.1");
        if (connection.Token is { } token)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        else if (connection.Username is { } user)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{connection.Password}")));
        }
    }

    /// <inheritdoc/>
    public Uri Server => _connection.Server;

    /// <inheritdoc/>
    public async Task<JsonObject> ApplyAsync(JsonObject obj, bool force, bool dryRun, CancellationToken cancellationToken)
    {
        var reference = ObjectRef.Of(obj);
        var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
        // Strict: a field the server's schema does not know (a typo) is an error, never silently dropped.
        var query = $"?fieldManager={Uri.EscapeDataString(_options.FieldManager)}&force={(force ? "true" : "false")}&fieldValidation=Strict" + (dryRun ? "&dryRun=All" : string.Empty);
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
    public async IAsyncEnumerable<string> ReadLogAsync(string ns, string pod, string container, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var path = $"api/v1/namespaces/{Uri.EscapeDataString(ns)}/pods/{Uri.EscapeDataString(pod)}/log?container={Uri.EscapeDataString(container)}" + (follow ? "&follow=true" : string.Empty);
        await _limiter.WaitAsync(cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new KubeUnavailableException($"cannot read the log of {ns}/{pod} on {Server}: {ex.Message}", ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw KubeApiException.From((int)response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                yield return line;
            }
        }
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
        var resource = await ResourceAsync(reference.ApiVersion, reference.Kind, cancellationToken);
        var body = new JsonObject { ["kind"] = "DeleteOptions", ["apiVersion"] = "v1", ["propagationPolicy"] = propagation.ToString() }.ToJsonString();
        try
        {
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
    public async IAsyncEnumerable<KubeWatchEvent> WatchAsync(
        string apiVersion, string kind, string? ns, string? labelSelector, string? resourceVersion, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var resource = await ResourceAsync(apiVersion, kind, cancellationToken);
        var version = resourceVersion;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (version is null)
            {
                // Start from a list, as informers do, so the first events are the current objects.
                var list = await ListAsync(apiVersion, kind, ns, labelSelector, cancellationToken);
                foreach (var item in list.Items)
                {
                    yield return new KubeWatchEvent(WatchEventType.Added, item);
                }

                version = list.ResourceVersion;
            }

            var query = new StringBuilder("?watch=true&allowWatchBookmarks=true&resourceVersion=").Append(Uri.EscapeDataString(version));
            if (labelSelector is not null)
            {
                query.Append("&labelSelector=").Append(Uri.EscapeDataString(labelSelector));
            }

            HttpResponseMessage? response = null;
            try
            {
                await _limiter.WaitAsync(cancellationToken);
                using var request = new HttpRequestMessage(HttpMethod.Get, resource.CollectionPath(ns) + query);
                request.Headers.Accept.Add(JsonType);
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (response.StatusCode == HttpStatusCode.Gone)
                {
                    response.Dispose();
                    version = null;
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    var text = await response.Content.ReadAsStringAsync(cancellationToken);
                    var code = (int)response.StatusCode;
                    response.Dispose();
                    if (code is 429 or >= 500 && ++failures < _options.MaxAttempts)
                    {
                        await Task.Delay(Backoff(failures), _options.Time, cancellationToken);
                        continue;
                    }

                    throw KubeApiException.From(code, text);
                }
            }
            catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
            {
                response?.Dispose();
                if (++failures >= _options.MaxAttempts)
                {
                    throw new KubeUnavailableException($"cannot watch {kind} on {Server}: {ex.Message}", ex);
                }

                await Task.Delay(Backoff(failures), _options.Time, cancellationToken);
                continue;
            }

            using (response)
            {
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
                while (true)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken);
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                    {
                        line = null;
                    }

                    if (line is null)
                    {
                        break;
                    }

                    if (line.Length == 0)
                    {
                        continue;
                    }

                    failures = 0;
                    var message = JsonNode.Parse(line)!.AsObject();
                    var type = message["type"]?.GetValue<string>();
                    var obj = message["object"] as JsonObject ?? [];
                    if (type == "ERROR")
                    {
                        if (RolloutStatus.Number(obj["code"], 0) == 410)
                        {
                            version = null;
                            break;
                        }

                        throw KubeApiException.From(RolloutStatus.Number(obj["code"], 500), obj.ToJsonString());
                    }

                    version = obj["metadata"]?["resourceVersion"]?.GetValue<string>() ?? version;
                    var eventType = type switch
                    {
                        "ADDED" => WatchEventType.Added,
                        "MODIFIED" => WatchEventType.Modified,
                        "DELETED" => WatchEventType.Deleted,
                        _ => WatchEventType.Bookmark,
                    };
                    yield return new KubeWatchEvent(eventType, (JsonObject)obj.DeepClone());
                }
            }
        }
    }

    /// <inheritdoc/>
    public async Task<RolloutStatus> GetRolloutStatusAsync(string ns, string name, CancellationToken cancellationToken)
    {
        var deployment = await GetAsync(new ObjectRef("apps/v1", "Deployment", ns, name), cancellationToken)
            ?? throw new KubeNotFoundException($"deployments.apps \"{name}\" not found");
        var selector = deployment["spec"]?["selector"]?["matchLabels"] as JsonObject;
        var labelSelector = selector is null ? null : string.Join(",", selector.Select(kv => $"{kv.Key}={kv.Value}"));
        var uid = deployment["metadata"]?["uid"]?.GetValue<string>();
        var sets = (await ListAsync("apps/v1", "ReplicaSet", ns, labelSelector, cancellationToken)).Items
            .Where(rs => (rs["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => r?["uid"]?.GetValue<string>() == uid)).ToList();

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

    private async Task<JsonObject?> SendAsync(Func<HttpRequestMessage> makeRequest, CancellationToken cancellationToken)
    {
        Exception? last = null;
        for (var attempt = 1; attempt <= _options.MaxAttempts; attempt++)
        {
            await _limiter.WaitAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.RequestTimeout);
            TimeSpan? retryAfter = null;
            try
            {
                using var request = makeRequest();
                request.Headers.Accept.Add(JsonType);
                using var response = await _http.SendAsync(request, timeout.Token);
                var text = await response.Content.ReadAsStringAsync(timeout.Token);
                var code = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    return text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject;
                }

                if (code is not (429 or 500 or 502 or 503 or 504))
                {
                    throw KubeApiException.From(code, text);
                }

                last = KubeApiException.From(code, text);
                if (response.Headers.RetryAfter?.Delta is { } delta)
                {
                    retryAfter = delta;
                }
                else if (response.Headers.RetryAfter?.Date is { } date)
                {
                    retryAfter = date - _options.Time.GetUtcNow();
                }
            }
            catch (HttpRequestException ex)
            {
                last = ex;
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                last = new TimeoutException($"no answer from {Server} within {_options.RequestTimeout.TotalSeconds:0.#} s", ex);
            }
            catch (JsonException ex)
            {
                throw new KubeUnavailableException($"{Server} answered something that is not JSON: {ex.Message}", ex);
            }

            if (attempt < _options.MaxAttempts)
            {
                var pause = retryAfter is { } ra && ra > TimeSpan.Zero ? ra : Backoff(attempt);
                await Task.Delay(pause, _options.Time, cancellationToken);
            }
        }

        throw last switch
        {
            KubeApiException api => new KubeUnavailableException($"{Server} kept failing after {_options.MaxAttempts} tries: {api.Message}", api),
            TimeoutException t => new KubeUnavailableException($"{t.Message} ({_options.MaxAttempts} tries)", t),
            _ => new KubeUnavailableException($"cannot reach {Server} after {_options.MaxAttempts} tries: {last?.Message}", last),
        };
    }

    private TimeSpan Backoff(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(5000, _options.Backoff.TotalMilliseconds * Math.Pow(2, attempt - 1)));

    private async Task<ApiResource> ResourceAsync(string apiVersion, string kind, CancellationToken cancellationToken)
    {
        lock (_resources)
        {
            if (_resources.TryGetValue((apiVersion, kind), out var known))
            {
                return known;
            }
        }

        await _discovery.WaitAsync(cancellationToken);
        try
        {
            var (group, version) = ApiResources.Split(apiVersion);
            var path = group.Length == 0 ? "/api/" + version : $"/apis/{group}/{version}";
            JsonObject? list;
            try
            {
                list = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);
            }
            catch (KubeNotFoundException)
            {
                list = null;
            }

            foreach (var r in list?["resources"] as JsonArray ?? [])
            {
                var name = r?["name"]?.GetValue<string>() ?? string.Empty;
                if (!name.Contains('/', StringComparison.Ordinal) && r?["kind"]?.GetValue<string>() is { } k)
                {
                    lock (_resources)
                    {
                        _resources.TryAdd((apiVersion, k), new ApiResource(group, version, k, name, r["namespaced"]?.GetValue<bool>() ?? true));
                    }
                }
            }

            lock (_resources)
            {
                return _resources.TryGetValue((apiVersion, kind), out var found)
                    ? found
                    : throw new KubeNotFoundException($"the server {Server} has no resource of kind {kind} in {apiVersion}");
            }
        }
        finally
        {
            _discovery.Release();
        }
    }

    private long _requests;

    /// <summary>How many HTTP requests this client has sent (retries included), for benchmarks and traces.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Counts every request that leaves the client.</summary>
    private sealed class CountingHandler(KubeClient owner) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref owner._requests);
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static void ConfigureTls(SocketsHttpHandler handler, ClusterConnection connection)
    {
        if (connection.Server.Scheme != "https")
        {
            return;
        }

        var ssl = new SslClientAuthenticationOptions();
        if (connection.ClientCertificatePem is { } certPem && connection.ClientKeyPem is { } keyPem)
        {
            using var pemCert = X509Certificate2.CreateFromPem(certPem, keyPem);
            ssl.ClientCertificates = [X509CertificateLoader.LoadPkcs12(pemCert.Export(X509ContentType.Pkcs12), null)];
        }

        if (connection.InsecureSkipTlsVerify)
        {
            ssl.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (connection.CertificateAuthority is { } caBytes)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPem(Encoding.UTF8.GetString(caBytes));
            ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }

        handler.SslOptions = ssl;
    }
}
