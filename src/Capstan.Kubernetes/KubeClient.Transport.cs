using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Kubernetes;

/// <summary>The transport of the client: the one retry handler every request goes through, discovery, TLS.</summary>
public sealed partial class KubeClient
{
    /// <summary>
    /// Sends a request until it succeeds: 429, 500, 502, 503, 504, connection errors and timeouts are tried again (up to
    /// <see cref="KubeClientOptions.MaxAttempts"/>, honouring Retry-After, else backing off), then reported as <see
    /// cref="KubeUnavailableException"/>; any other error answer is a typed <see cref="KubeApiException"/> at once. With
    /// <see cref="HttpCompletionOption.ResponseHeadersRead"/> the timeout covers the headers only (a watch or a followed
    /// log streams for as long as it lasts).
    /// </summary>
    private async Task<HttpResponseMessage> SendRawAsync(Func<HttpRequestMessage> makeRequest, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        Exception? last = null;
        for (var attempt = 1; ; attempt++)
        {
            await _limiter.WaitAsync(cancellationToken);
            TimeSpan? retryAfter = null;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    using var request = makeRequest();
                    request.Headers.Accept.Add(JsonType);
                    // HTTP/2 where the server speaks it, as kubectl: watches share one connection instead of one each.
                    request.Version = System.Net.HttpVersion.Version20;
                    request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
                    var response = await _http.SendAsync(request, completion, timeout.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        return response;
                    }

                    using (response)
                    {
                        var code = (int)response.StatusCode;
                        var error = KubeApiException.From(code, await response.Content.ReadAsStringAsync(timeout.Token));
                        if (code is not (429 or 500 or 502 or 503 or 504))
                        {
                            throw error;
                        }

                        last = error;
                        retryAfter = response.Headers.RetryAfter?.Delta ?? (response.Headers.RetryAfter?.Date - _options.Time.GetUtcNow());
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
            }

            if (attempt >= _options.MaxAttempts)
            {
                throw last switch
                {
                    KubeApiException api => new KubeUnavailableException($"{Server} kept failing after {_options.MaxAttempts} tries: {api.Message}", api),
                    TimeoutException t => new KubeUnavailableException($"{t.Message} ({_options.MaxAttempts} tries)", t),
                    _ => new KubeUnavailableException($"cannot reach {Server} after {_options.MaxAttempts} tries: {last?.Message}", last),
                };
            }

            await Task.Delay(retryAfter is { } ra && ra > TimeSpan.Zero ? ra : Backoff(attempt), _options.Time, cancellationToken);
        }
    }

    /// <summary>A request whose answer is a JSON object (or empty).</summary>
    private async Task<JsonObject?> SendAsync(Func<HttpRequestMessage> makeRequest, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(makeRequest, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var utf8 = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        try
        {
            return utf8.Length == 0 ? null : JsonNode.Parse(utf8) as JsonObject;
        }
        catch (JsonException ex)
        {
            throw new KubeUnavailableException($"{Server} answered something that is not JSON: {ex.Message}", ex);
        }
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
            handler.SslOptions = ssl;
            return;
        }

        var roots = new X509Certificate2Collection();
        if (connection.CertificateAuthority is { } caBytes)
        {
            roots.ImportFromPem(Encoding.UTF8.GetString(caBytes));
            if (roots.Count == 0)
            {
                // Never fall back to the system's roots when a CA was named.
                throw new KubeConfigException($"the certificate authority of {connection.Server} holds no PEM certificate");
            }
        }

        if (roots.Count == 0 && connection.TlsServerName is null)
        {
            // The system's roots and the URL's host name: the platform's own check.
            handler.SslOptions = ssl;
            return;
        }

        ssl.RemoteCertificateValidationCallback = (_, certificate, sent, errors) =>
        {
            if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
            {
                return false;
            }

            using var presented = new X509Certificate2(certificate);
            // tls-server-name: the name the certificate must carry when it is not the URL's host (the platform checked
            // the URL's host; that verdict is replaced, never dropped).
            var named = connection.TlsServerName is { } serverName
                ? presented.MatchesHostname(serverName, allowWildcards: true, allowCommonName: false)
                : (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
            if (!named)
            {
                return false;
            }

            if (roots.Count == 0)
            {
                return (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0;
            }

            // The intermediates the server sent lead from its certificate to the kubeconfig's CA.
            return Core.Security.CustomRoots.Chains(presented, sent, roots);
        };

        handler.SslOptions = ssl;
    }
}
