using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Kubernetes;

/// <summary>The streaming calls of the client: watches and logs.</summary>
public sealed partial class KubeClient
{
    /// <inheritdoc/>
    public async IAsyncEnumerable<string> ReadLogAsync(string ns, string pod, string container, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var path = $"api/v1/namespaces/{Uri.EscapeDataString(ns)}/pods/{Uri.EscapeDataString(pod)}/log?container={Uri.EscapeDataString(container)}" + (follow ? "&follow=true" : string.Empty);
        using var response = await SendRawAsync(() => new HttpRequestMessage(HttpMethod.Get, path), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            yield return line;
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<KubeWatchEvent> WatchAsync(
        string apiVersion, string kind, string? ns, string? labelSelector, string? resourceVersion, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var resource = await ResourceAsync(apiVersion, kind, cancellationToken);
        var version = resourceVersion;
        // Streams that end within a second without a single event count as failures, so a server that closes every
        // watch at once is not reconnected to in a tight loop.
        var emptyStreams = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (version is null)
            {
                // Start from a list, as informers do, so the first events are the current objects.
                var list = await ListAsync(apiVersion, kind, ns, labelSelector, cancellationToken);
                var items = new JsonArray();
                foreach (var item in list.Items)
                {
                    items.Add(item.DeepClone());
                    yield return new KubeWatchEvent(WatchEventType.Added, item);
                }

                version = list.ResourceVersion;
                yield return new KubeWatchEvent(WatchEventType.Synced, new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = version }, ["items"] = items });
            }

            // A server-side timeout of five to ten minutes, as client-go's reflector asks: a connection that went quiet
            // without a reset is replaced, and the watches of many clients do not all end at once.
            var timeout = 300 + Random.Shared.Next(300);
            var query = new StringBuilder("?watch=true&allowWatchBookmarks=true&timeoutSeconds=").Append(timeout).Append("&resourceVersion=").Append(Uri.EscapeDataString(version));
            if (labelSelector is not null)
            {
                query.Append("&labelSelector=").Append(Uri.EscapeDataString(labelSelector));
            }

            HttpResponseMessage response;
            try
            {
                response = await SendRawAsync(() => new HttpRequestMessage(HttpMethod.Get, resource.CollectionPath(ns) + query), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (KubeApiException ex) when (ex.StatusCode == (int)HttpStatusCode.Gone)
            {
                // The version is older than the server's history: list again.
                version = null;
                continue;
            }

            var lines = 0;
            var opened = _options.Time.GetUtcNow();
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
                        // The stream broke: resume from the last version seen.
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

                    lines++;
                    JsonObject message;
                    try
                    {
                        message = JsonNode.Parse(line)!.AsObject();
                    }
                    catch (JsonException ex)
                    {
                        throw new KubeUnavailableException($"{Server} sent a watch event that is not JSON: {ex.Message}", ex);
                    }

                    var type = message["type"]?.GetValue<string>();
                    var obj = message["object"] as JsonObject ?? [];
                    if (type == "ERROR")
                    {
                        if (RolloutStatus.Number(obj["code"], 0) == (int)HttpStatusCode.Gone)
                        {
                            version = null;
                            break;
                        }

                        var code = RolloutStatus.Number(obj["code"], 500);
                        var error = KubeApiException.From(code, obj.ToJsonString());
                        // An overloaded or timed-out server is a passing outage, not a refusal.
                        throw code is 429 or >= 500 ? new KubeUnavailableException($"{Server} ended a watch of {kind}: {error.Message}", error) : error;
                    }

                    version = obj["metadata"]?["resourceVersion"]?.GetValue<string>() ?? version;
                    var eventType = type switch
                    {
                        "ADDED" => WatchEventType.Added,
                        "MODIFIED" => WatchEventType.Modified,
                        "DELETED" => WatchEventType.Deleted,
                        _ => WatchEventType.Bookmark,
                    };
                    obj.Parent?.AsObject().Remove("object");
                    yield return new KubeWatchEvent(eventType, obj);
                }
            }

            emptyStreams = lines == 0 && _options.Time.GetUtcNow() - opened < TimeSpan.FromSeconds(1) ? emptyStreams + 1 : 0;
            if (emptyStreams >= _options.MaxAttempts)
            {
                throw new KubeUnavailableException($"{Server} closed {emptyStreams} watches of {kind} in a row without an event");
            }

            if (emptyStreams > 0)
            {
                await Task.Delay(Backoff(emptyStreams), _options.Time, cancellationToken);
            }
        }
    }
}
