using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.State.Etcd;

/// <summary>Timeouts and retries of the etcd client.</summary>
public sealed record EtcdOptions
{
    /// <summary>How long one request may take before the next endpoint is tried.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a TCP connection may take to open.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How many times every endpoint is tried before giving up.</summary>
    public int Rounds { get; init; } = 3;

    /// <summary>The pause after the first failed round; it doubles after each round.</summary>
    public TimeSpan Backoff { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The etcd user to authenticate as with <see cref="Password"/> (etcd's auth must be enabled); null for none.</summary>
    public string? Username { get; init; }

    /// <summary>The user's password (never printed).</summary>
    public string? Password { get; init; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"EtcdOptions {{ RequestTimeout = {RequestTimeout}, Rounds = {Rounds}, Username = {Username}, Password = {(Password is null ? "none" : "(hidden)")}, CaFile = {CaFile}, CertFile = {CertFile} }}";

    /// <summary>PEM bundle of the CA that signs the members' certificates (etcds://); null for the system's roots.</summary>
    public string? CaFile { get; init; }

    /// <summary>PEM client certificate (etcd's --client-cert-auth: its CN is the user) and <see cref="KeyFile"/>, its key.</summary>
    public string? CertFile { get; init; }

    /// <summary>The client certificate's private key (PEM).</summary>
    public string? KeyFile { get; init; }
}

/// <summary>
/// An etcd v3 client over etcd's JSON gateway (<c>/v3/kv/range</c>, <c>/v3/kv/txn</c>, <c>/v3/lease/*</c>,
/// <c>/v3/watch</c>). It fails over across the listed members, retries transient errors with backoff, and names
/// every endpoint it tried when it gives up. TLS (etcds://) is verified against the given CA (else the platform's
/// roots), with a client certificate when given. With a user and password it authenticates
/// (<c>/v3/auth/authenticate</c>) and sends the token with every request, authenticating again when etcd no longer
/// knows the token (it expired, or the member restarted).
/// </summary>
public sealed class EtcdStateStore : IStateStore
{
    private readonly IReadOnlyList<Uri> _endpoints;
    private readonly string _prefix;
    private readonly HttpClient _http;
    private readonly EtcdOptions _options;
    private int _preferred;

    /// <summary>Creates a client for the given members (<c>http://host:port</c>) and key prefix.</summary>
    public EtcdStateStore(IReadOnlyList<Uri> endpoints, string prefix, EtcdOptions? options = null)
    {
        if (endpoints.Count == 0)
        {
            throw new ArgumentException("at least one etcd endpoint is needed", nameof(endpoints));
        }

        _endpoints = endpoints;
        _prefix = prefix.TrimEnd('/') + "/";
        _options = options ?? new EtcdOptions();
        var handler = new SocketsHttpHandler { ConnectTimeout = _options.ConnectTimeout, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        handler.SslOptions = EtcdTls.Options(_options);
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        Address = (endpoints[0].Scheme == "https" ? "etcds://" : "etcd://") + string.Join(",", endpoints.Select(e => e.Authority)) + "?prefix=" + _prefix.TrimEnd('/');
    }

    private readonly SemaphoreSlim _authenticating = new(1, 1);
    private string? _token;

    /// <summary>How many times the client has authenticated (for tests and traces).</summary>
    public int Authentications { get; private set; }

    /// <inheritdoc/>
    public string Address { get; }

    /// <inheritdoc/>
    public async Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var response = await PostAsync("/v3/kv/range", new JsonObject { ["key"] = B64(_prefix + key) }, cancellationToken);
        return response["kvs"] is JsonArray { Count: > 0 } kvs ? ToStored(kvs[0]!.AsObject()) : null;
    }

    /// <inheritdoc/>
    public async Task<(IReadOnlyList<StoredValue> Items, long Revision)> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var full = _prefix + prefix;
        var response = await PostAsync(
            "/v3/kv/range",
            new JsonObject { ["key"] = B64(full), ["range_end"] = B64Bytes(PrefixEnd(full)), ["sort_order"] = "ASCEND", ["sort_target"] = "KEY" },
            cancellationToken);
        var items = response["kvs"] is JsonArray kvs ? kvs.Select(kv => ToStored(kv!.AsObject())).ToList() : [];
        return (items, Revision(response));
    }

    /// <inheritdoc/>
    public async Task<TxnResult> CommitAsync(StoreTxn txn, CancellationToken cancellationToken)
    {
        var compares = new JsonArray([.. txn.Compares.Select(c => (JsonNode)new JsonObject
        {
            ["key"] = B64(_prefix + c.Key),
            ["target"] = "MOD",
            ["result"] = "EQUAL",
            ["mod_revision"] = c.ModRevision.ToString(CultureInfo.InvariantCulture),
        })]);
        var operations = new JsonArray([.. txn.Operations.Select(op => (JsonNode)(op switch
        {
            StoreOp.Put put => new JsonObject
            {
                ["request_put"] = new JsonObject
                {
                    ["key"] = B64(_prefix + put.Key),
                    ["value"] = B64(put.Value),
                    ["lease"] = put.Lease.ToString(CultureInfo.InvariantCulture),
                },
            },
            _ => new JsonObject { ["request_delete_range"] = new JsonObject { ["key"] = B64(_prefix + op.Key) } },
        }))]);
        var response = await PostAsync("/v3/kv/txn", new JsonObject { ["compare"] = compares, ["success"] = operations }, cancellationToken);
        return new TxnResult(response["succeeded"]?.GetValue<bool>() ?? false, Revision(response));
    }

    /// <inheritdoc/>
    public async Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken)
    {
        var seconds = Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));
        var response = await PostAsync("/v3/lease/grant", new JsonObject { ["TTL"] = seconds.ToString(CultureInfo.InvariantCulture) }, cancellationToken);
        return Long(response["ID"]);
    }

    /// <inheritdoc/>
    public async Task KeepAliveAsync(long lease, CancellationToken cancellationToken)
    {
        var response = await PostAsync("/v3/lease/keepalive", new JsonObject { ["ID"] = lease.ToString(CultureInfo.InvariantCulture) }, cancellationToken);
        var result = response["result"] as JsonObject ?? response;
        if (Long(result["TTL"]) <= 0)
        {
            throw new LeaseExpiredException(lease, Address);
        }
    }

    /// <inheritdoc/>
    public async Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken)
    {
        try
        {
            await PostAsync("/v3/lease/revoke", new JsonObject { ["ID"] = lease.ToString(CultureInfo.InvariantCulture) }, cancellationToken);
        }
        catch (EtcdRequestException ex) when (ex.Code == 5)
        {
            // Already expired: nothing left to revoke.
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var full = _prefix + prefix;
        var next = fromRevision;
        var failures = 0;
        string? watchToken = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var endpoint = _endpoints[_preferred % _endpoints.Count];
            var body = new JsonObject
            {
                ["create_request"] = new JsonObject
                {
                    ["key"] = B64(full),
                    ["range_end"] = B64Bytes(PrefixEnd(full)),
                    ["start_revision"] = next.ToString(CultureInfo.InvariantCulture),
                },
            };
            HttpResponseMessage? response = null;
            Stream? stream = null;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint, "/v3/watch"))
                {
                    Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
                };
                watchToken = await TokenAsync(null, cancellationToken);
                if (watchToken is not null)
                {
                    request.Headers.TryAddWithoutValidation("Authorization", watchToken);
                }

                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                response.EnsureSuccessStatusCode();
                stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
            {
                response?.Dispose();
                if (++failures > _options.Rounds * _endpoints.Count)
                {
                    throw new StateStoreException($"cannot watch {Address}: {ex.Message}", ex);
                }

                _preferred++;
                await Task.Delay(_options.Backoff, cancellationToken);
                continue;
            }

            using (response)
            using (var reader = new StreamReader(stream))
            {
                while (true)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken);
                    }
                    catch (IOException) when (!cancellationToken.IsCancellationRequested)
                    {
                        line = null;
                    }
                    catch (HttpRequestException) when (!cancellationToken.IsCancellationRequested)
                    {
                        line = null;
                    }

                    if (line is null)
                    {
                        // The member went away: resume from the next revision on another one.
                        _preferred++;
                        break;
                    }

                    if (line.Length == 0)
                    {
                        continue;
                    }

                    var message = JsonNode.Parse(line)!.AsObject();
                    if (message["error"] is { } error)
                    {
                        if (InvalidToken(error["message"]?.GetValue<string>()) && ++failures <= _options.Rounds)
                        {
                            // The token is gone (expired, or the member restarted): authenticate again and resume.
                            await TokenAsync(watchToken, cancellationToken);
                            break;
                        }

                        throw new StateStoreException($"watch on {Address} failed: {error["message"] ?? error}");
                    }

                    var result = message["result"]!.AsObject();
                    if (result["canceled"]?.GetValue<bool>() == true && result["compact_revision"] is null)
                    {
                        // etcd refused the watch (a token it no longer knows reads as "permission denied"):
                        // authenticate again and reconnect, a few times, then say why.
                        var reason = result["cancel_reason"]?.GetValue<string>() ?? "canceled by etcd";
                        if (watchToken is not null && ++failures <= _options.Rounds)
                        {
                            await TokenAsync(watchToken, cancellationToken);
                            break;
                        }

                        throw new StateStoreException($"watch on {Address} was refused: {reason}");
                    }

                    if (result["compact_revision"] is { } compacted && Long(compacted) > 0)
                    {
                        throw new StateStoreException($"watch on {Address}: revision {next} has been compacted (oldest kept: {Long(compacted)})");
                    }

                    failures = 0;
                    foreach (var e in result["events"] as JsonArray ?? [])
                    {
                        var kv = e!["kv"]!.AsObject();
                        var type = e["type"]?.GetValue<string>() == "DELETE" ? WatchEventType.Delete : WatchEventType.Put;
                        var modRevision = Long(kv["mod_revision"]);
                        next = modRevision + 1;
                        yield return new WatchEvent(
                            type,
                            Unprefix(FromB64(kv["key"]!.GetValue<string>())),
                            type == WatchEventType.Put ? FromB64(kv["value"]?.GetValue<string>() ?? string.Empty) : null,
                            modRevision);
                    }
                }
            }

            await Task.Delay(_options.Backoff, cancellationToken);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        _authenticating.Dispose();
        return ValueTask.CompletedTask;
    }

    private static bool InvalidToken(string? message) =>
        message is not null && (message.Contains("invalid auth token", StringComparison.Ordinal) || message.Contains("user name is empty", StringComparison.Ordinal));

    /// <summary>
    /// The auth token to send (null without a user): the one held, unless it is <paramref name="stale"/> (the one a
    /// request was just refused with), in which case the client authenticates again, once for all waiting requests.
    /// </summary>
    private async Task<string?> TokenAsync(string? stale, CancellationToken cancellationToken)
    {
        if (_options.Username is null)
        {
            return null;
        }

        await _authenticating.WaitAsync(cancellationToken);
        try
        {
            if (_token is not null && _token != stale)
            {
                return _token;
            }

            var credentials = new JsonObject { ["name"] = _options.Username, ["password"] = _options.Password ?? string.Empty };
            JsonObject response;
            try
            {
                response = await SendAsync("/v3/auth/authenticate", credentials.ToJsonString(), token: null, cancellationToken);
            }
            catch (EtcdRequestException ex)
            {
                throw new EtcdRequestException($"etcd refused to authenticate user '{_options.Username}': {ex.Message[(ex.Message.IndexOf(": ", StringComparison.Ordinal) + 2)..]}", ex.Code);
            }

            Authentications++;
            _token = response["token"]?.GetValue<string>() ?? throw new StateStoreException($"etcd at {Address} authenticated user '{_options.Username}' but gave no token");
            return _token;
        }
        finally
        {
            _authenticating.Release();
        }
    }

    private async Task<JsonObject> PostAsync(string path, JsonObject body, CancellationToken cancellationToken)
    {
        var payload = body.ToJsonString();
        var token = await TokenAsync(null, cancellationToken);
        try
        {
            return await SendAsync(path, payload, token, cancellationToken);
        }
        catch (EtcdRequestException ex) when (token is not null && InvalidToken(ex.Message))
        {
            return await SendAsync(path, payload, await TokenAsync(token, cancellationToken), cancellationToken);
        }
    }

    private async Task<JsonObject> SendAsync(string path, string payload, string? token, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var backoff = _options.Backoff;
        for (var round = 0; round < _options.Rounds; round++)
        {
            for (var i = 0; i < _endpoints.Count; i++)
            {
                var index = (_preferred + i) % _endpoints.Count;
                var endpoint = _endpoints[index];
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint, path))
                    {
                        Content = new StringContent(payload, Encoding.UTF8, "application/json"),
                    };
                    if (token is not null)
                    {
                        request.Headers.TryAddWithoutValidation("Authorization", token);
                    }

                    using var response = await _http.SendAsync(request, timeout.Token);
                    var text = await response.Content.ReadAsStringAsync(timeout.Token);
                    if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        errors.Add($"{endpoint.Authority}: HTTP {(int)response.StatusCode} {Message(text)}");
                        continue;
                    }

                    if (!response.IsSuccessStatusCode)
                    {
                        var code = TryParse(text)?["code"]?.GetValue<int>() ?? 0;
                        var message = Message(text).Trim();
                        if (message.Contains("CommonName of client", StringComparison.Ordinal))
                        {
                            // etcd takes no user from a client certificate on its JSON gateway: the certificate only
                            // authenticates the connection, the user comes from a password.
                            message += " (etcd's JSON gateway takes no user from a client certificate: add user=NAME with its password; the certificate still authenticates the connection)";
                        }

                        throw new EtcdRequestException($"etcd at {endpoint.Authority} refused {path}: {message}", code);
                    }

                    _preferred = index;
                    return JsonNode.Parse(text)!.AsObject();
                }
                catch (HttpRequestException ex)
                {
                    errors.Add($"{endpoint.Authority}: {ex.Message}");
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    errors.Add($"{endpoint.Authority}: no answer within {_options.RequestTimeout.TotalSeconds:0.#} s");
                }
                catch (JsonException ex)
                {
                    errors.Add($"{endpoint.Authority}: unreadable answer ({ex.Message})");
                }
            }

            if (round + 1 < _options.Rounds)
            {
                await Task.Delay(backoff, cancellationToken);
                backoff *= 2;
            }
        }

        throw new StateStoreException($"etcd is unreachable: {string.Join("; ", errors.Distinct())}");
    }

    private static JsonNode? TryParse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Message(string text)
    {
        try
        {
            return JsonNode.Parse(text)?["message"]?.GetValue<string>() ?? text;
        }
        catch (JsonException)
        {
            return text.Length > 200 ? text[..200] : text;
        }
    }

    private StoredValue ToStored(JsonObject kv) => new(
        Unprefix(FromB64(kv["key"]!.GetValue<string>())),
        FromB64(kv["value"]?.GetValue<string>() ?? string.Empty),
        Long(kv["create_revision"]),
        Long(kv["mod_revision"]),
        Long(kv["version"]),
        Long(kv["lease"]));

    private string Unprefix(string key) => key.StartsWith(_prefix, StringComparison.Ordinal) ? key[_prefix.Length..] : key;

    private static long Revision(JsonObject response) => Long(response["header"]?["revision"]);

    private static long Long(JsonNode? node) => node?.GetValueKind() switch
    {
        JsonValueKind.String => long.Parse(node.GetValue<string>(), CultureInfo.InvariantCulture),
        JsonValueKind.Number => node.GetValue<long>(),
        _ => 0,
    };

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static string B64Bytes(byte[] bytes) => Convert.ToBase64String(bytes);

    private static string FromB64(string b64) => Encoding.UTF8.GetString(Convert.FromBase64String(b64));

    private static byte[] PrefixEnd(string prefix)
    {
        // etcd's prefix range: the prefix with its last byte incremented.
        var bytes = Encoding.UTF8.GetBytes(prefix);
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return bytes[..(i + 1)];
            }
        }

        return [0];
    }
}

/// <summary>etcd answered with an error that retrying will not fix (bad request, lease not found).</summary>
public sealed class EtcdRequestException(string message, int code) : StateStoreException(message)
{
    /// <summary>The gRPC status code etcd gave.</summary>
    public int Code { get; } = code;
}
