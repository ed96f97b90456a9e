using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>
/// A repository in a registry, over the distribution API: HEAD before every upload, cross-repository mount when the
/// blob's source repository is known, monolithic uploads for small blobs and chunked (PATCH) uploads for big ones,
/// manifests by tag and digest, Bearer-token and Basic auth, retries on 5xx/429 and dropped connections. TLS is
/// verified; plain http is only accepted for a loopback registry (checked by <see cref="ImageReference"/>).
/// </summary>
public sealed class RegistryClient : IImageStore, IDisposable
{
    private const long ChunkThreshold = 32L << 20;
    private const int ChunkSize = 16 << 20;
    private static readonly TimeSpan[] Backoff = [TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)];

    private readonly HttpClient _http;
    private readonly Uri _registry;
    private readonly string _repository;
    private readonly RegistryCredentials? _credentials;
    private AuthenticationHeaderValue? _auth;

    /// <summary>Creates a client for one repository.</summary>
    public RegistryClient(Uri registry, string repository, RegistryCredentials? credentials, HttpMessageHandler? handler = null)
    {
        _registry = registry;
        _repository = repository;
        _credentials = credentials;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = true, PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = TimeSpan.FromMinutes(30) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("capstan/0.1");
    }

    /// <summary>A repository whose blobs may be mounted instead of uploaded (same registry).</summary>
    public string? MountFrom { get; init; }

    /// <inheritdoc/>
    public string Describe => $"{_registry.Authority}/{_repository}";

    /// <summary>How many blob bytes were uploaded (mounted and skipped blobs count nothing).</summary>
    public long BytesUploaded { get; private set; }

    /// <inheritdoc/>
    public async Task<bool> HasBlobAsync(string digest, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Head, Url($"blobs/{digest}")), cancellationToken);
        return response.StatusCode switch
        {
            HttpStatusCode.OK => true,
            HttpStatusCode.NotFound => false,
            _ => throw await FailureAsync(response, $"checking blob {digest}", cancellationToken),
        };
    }

    /// <inheritdoc/>
    public async Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken)
    {
        var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Url($"blobs/{digest}")), cancellationToken, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            using (response)
            {
                throw await FailureAsync(response, $"pulling blob {digest}", cancellationToken);
            }
        }

        return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
    }

    /// <inheritdoc/>
    public async Task PutBlobAsync(Descriptor descriptor, Func<Stream> open, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        if (await HasBlobAsync(descriptor.Digest, cancellationToken))
        {
            return;
        }

        Uri location;
        var start = MountFrom is { } mountFrom && mountFrom != _repository
            ? Url($"blobs/uploads/?mount={Uri.EscapeDataString(descriptor.Digest)}&from={Uri.EscapeDataString(mountFrom)}")
            : Url("blobs/uploads/");
        using (var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, start) { Content = new ByteArrayContent([]) }, cancellationToken))
        {
            if (response.StatusCode == HttpStatusCode.Created)
            {
                return;
            }

            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                throw await FailureAsync(response, $"starting the upload of {descriptor.Digest}", cancellationToken);
            }

            location = Location(response);
        }

        if (descriptor.Size <= ChunkThreshold)
        {
            await using var source = open();
            var bytes = new byte[descriptor.Size];
            await source.ReadExactlyAsync(bytes, cancellationToken);
            using var response = await SendAsync(
                () => new HttpRequestMessage(HttpMethod.Put, WithDigest(location, descriptor.Digest)) { Content = Octets(bytes, bytes.Length) },
                cancellationToken);
            if (response.StatusCode != HttpStatusCode.Created)
            {
                throw await FailureAsync(response, $"uploading {descriptor.Digest}", cancellationToken);
            }

            BytesUploaded += bytes.Length;
            progress?.Report(bytes.Length);
            return;
        }

        // Chunked: PATCH each chunk with its range, then PUT the digest.
        await using (var source = open())
        {
            var buffer = new byte[ChunkSize];
            long offset = 0;
            while (true)
            {
                var filled = 0;
                int read;
                while (filled < buffer.Length && (read = await source.ReadAsync(buffer.AsMemory(filled), cancellationToken)) > 0)
                {
                    filled += read;
                }

                if (filled == 0)
                {
                    break;
                }

                var from = offset;
                var target = location;
                using var response = await SendAsync(
                    () =>
                    {
                        var request = new HttpRequestMessage(HttpMethod.Patch, target) { Content = Octets(buffer, filled) };
                        request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{from}-{from + filled - 1}");
                        return request;
                    },
                    cancellationToken,
                    retry: false);
                if (response.StatusCode != HttpStatusCode.Accepted)
                {
                    throw await FailureAsync(response, $"uploading a chunk of {descriptor.Digest}", cancellationToken);
                }

                location = Location(response);
                offset += filled;
                BytesUploaded += filled;
                progress?.Report(offset);
            }
        }

        using (var done = await SendAsync(() => new HttpRequestMessage(HttpMethod.Put, WithDigest(location, descriptor.Digest)) { Content = Octets([], 0) }, cancellationToken))
        {
            if (done.StatusCode != HttpStatusCode.Created)
            {
                throw await FailureAsync(done, $"finishing the upload of {descriptor.Digest}", cancellationToken);
            }
        }
    }

    /// <inheritdoc/>
    public async Task<(byte[] Bytes, string MediaType, string Digest)?> GetManifestAsync(string reference, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, Url($"manifests/{reference}"));
                foreach (var type in MediaTypes.ManifestAccept)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
                }

                return request;
            },
            cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw await FailureAsync(response, $"reading manifest {reference}", cancellationToken);
        }

        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var digest = Digests.Of(bytes);
        var claimed = reference.StartsWith("sha256:", StringComparison.Ordinal) ? reference
            : response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.First() : digest;
        if (claimed != digest)
        {
            throw new DigestMismatchException($"manifest {reference} from {Describe}", claimed, digest);
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType ?? OciLayout.MediaTypeOf(bytes);
        return (bytes, mediaType, digest);
    }

    /// <inheritdoc/>
    public async Task PutManifestAsync(string? tag, byte[] bytes, string mediaType, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(
            () =>
            {
                var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return new HttpRequestMessage(HttpMethod.Put, Url($"manifests/{tag ?? Digests.Of(bytes)}")) { Content = content };
            },
            cancellationToken);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw await FailureAsync(response, $"storing manifest {tag ?? Digests.Of(bytes)}", cancellationToken);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    private Uri Url(string path) => new(_registry, $"v2/{_repository}/{path}");

    private Uri Location(HttpResponseMessage response) =>
        response.Headers.Location is { } location
            ? (location.IsAbsoluteUri ? location : new Uri(_registry, location))
            : throw new ImageException($"{Describe} accepted an upload without saying where to send it (no Location header)");

    private static Uri WithDigest(Uri location, string digest) =>
        new(location + (location.Query.Length > 0 ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest));

    private static ByteArrayContent Octets(byte[] bytes, int count)
    {
        var content = new ByteArrayContent(bytes, 0, count);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    private async Task<HttpResponseMessage> SendAsync(
        Func<HttpRequestMessage> make, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, bool retry = true)
    {
        for (var attempt = 0; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                using var request = make();
                request.Headers.Authorization = _auth;
                response = await _http.SendAsync(request, completion, cancellationToken);
            }
            catch (HttpRequestException ex) when (retry && attempt < Backoff.Length)
            {
                _ = ex;
                await Task.Delay(Backoff[attempt], cancellationToken);
                continue;
            }
            catch (HttpRequestException ex)
            {
                throw new ImageException($"cannot reach the registry {_registry.Authority}: {ex.Message}", ex);
            }

            if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0 && await AuthenticateAsync(response, cancellationToken))
            {
                response.Dispose();
                continue;
            }

            if (retry && attempt < Backoff.Length && (response.StatusCode == HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500))
            {
                response.Dispose();
                await Task.Delay(Backoff[attempt], cancellationToken);
                continue;
            }

            return response;
        }
    }

    private async Task<bool> AuthenticateAsync(HttpResponseMessage challenge, CancellationToken cancellationToken)
    {
        var header = challenge.Headers.WwwAuthenticate.FirstOrDefault();
        if (header is null)
        {
            return false;
        }

        if (header.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            _auth = _credentials is null
                ? throw new ImageException($"the registry {_registry.Authority} needs credentials: set CAPSTAN_REGISTRY_USERNAME and CAPSTAN_REGISTRY_PASSWORD (or log in with docker/skopeo)")
                : new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_credentials.Username}:{_credentials.Password}")));
            return true;
        }

        if (!header.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) || header.Parameter is null)
        {
            return false;
        }

        var parameters = AuthChallenge.Parse(header.Parameter);
        if (!parameters.TryGetValue("realm", out var realm))
        {
            return false;
        }

        var query = new List<string>();
        if (parameters.TryGetValue("service", out var service))
        {
            query.Add("service=" + Uri.EscapeDataString(service));
        }

        query.Add("scope=" + Uri.EscapeDataString(parameters.TryGetValue("scope", out var scope) ? scope : $"repository:{_repository}:pull,push"));
        using var request = new HttpRequestMessage(HttpMethod.Get, realm + (realm.Contains('?', StringComparison.Ordinal) ? "&" : "?") + string.Join("&", query));
        if (_credentials is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_credentials.Username}:{_credentials.Password}")));
        }

        using var response = await _http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new ImageException($"the token service {realm} of {_registry.Authority} refused: {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        var token = body?["token"]?.GetValue<string>() ?? body?["access_token"]?.GetValue<string>()
            ?? throw new ImageException($"the token service {realm} answered without a token");
        _auth = new AuthenticationHeaderValue("Bearer", token);
        return true;
    }

    private async Task<ImageException> FailureAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var body = response.Content is null ? string.Empty : await response.Content.ReadAsStringAsync(cancellationToken);
        var message = JsonNodeMessage(body) ?? (body.Length > 200 ? body[..200] : body);
        return new ImageException($"{Describe}: {what}: {(int)response.StatusCode} {response.ReasonPhrase}{(message.Length > 0 ? ": " + message : string.Empty)}");
    }

    private static string? JsonNodeMessage(string body)
    {
        try
        {
            var errors = JsonNode.Parse(body)?["errors"] as JsonArray;
            return errors is { Count: > 0 } ? string.Join("; ", errors.Select(e => $"{e?["code"]}: {e?["message"]}")) : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
