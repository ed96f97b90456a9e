using System.Text.Json.Nodes;

namespace Capstan.Kubernetes.Watching;

/// <summary>
/// The objects of one kind in one namespace as one watch keeps them, as an informer does: listed, then kept current by
/// the watch's events, and listed again after a failure or when the watch's history is gone. While the API does not
/// answer, <see cref="Unavailable"/> says since when; a refusal that retrying cannot fix (403) is kept in <see
/// cref="Refused"/> and ends the watch.
/// </summary>
internal sealed class SharedWatch : IAsyncDisposable
{
    private readonly Dictionary<string, JsonObject> _objects = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Action _changed;
    private readonly Task _loop;

    public SharedWatch(IClusterClient client, string apiVersion, string kind, string ns, TimeProvider time, Action changed, string? labelSelector = null)
    {
        ApiVersion = apiVersion;
        Kind = kind;
        _changed = changed;
        _labelSelector = labelSelector;
        _loop = Task.Run(() => RunAsync(client, ns, time, _stop.Token));
    }

    private readonly string? _labelSelector;

    public string ApiVersion { get; }

    public string Kind { get; }

    /// <summary>True once the first list is in.</summary>
    public bool Synced { get; private set; }

    /// <summary>Since when no request of this watch has succeeded, and the last error; null while it answers.</summary>
    public Outage? Unavailable => Volatile.Read(ref _outage);

    /// <summary>A failure that retrying cannot fix (forbidden, unknown kind, credentials that cannot be had).</summary>
    public Exception? Refused => Volatile.Read(ref _refused);

    private Outage? _outage;
    private Exception? _refused;

    /// <summary>The objects now held (the same instances until an event replaces them; never changed in place).</summary>
    public IReadOnlyList<JsonObject> Objects
    {
        get
        {
            lock (_gate)
            {
                return [.. _objects.Values];
            }
        }
    }

    private async Task RunAsync(IClusterClient client, string ns, TimeProvider time, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // From a fresh list each time: after a failure nothing says which events were missed.
                await foreach (var e in client.WatchAsync(ApiVersion, Kind, ns, _labelSelector, null, cancellationToken))
                {
                    failures = 0;
                    Apply(e);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is KubeForbiddenException or KubeNotFoundException or KubeCredentialException)
            {
                // Retrying cannot help: the waits in this namespace end with it.
                Volatile.Write(ref _refused, ex);
                _changed();
                return;
            }
            catch (Exception ex) when (ex is KubeUnavailableException or KubeApiException or HttpRequestException or IOException or System.Text.Json.JsonException)
            {
                // Transient (the API is away, overloaded, or the stream broke): list again after a pause; the waits
                // see since when it has been away.
                var now = time.GetUtcNow();
                Volatile.Write(ref _outage, new Outage(_outage?.Since ?? now, ex.Message));
                _changed();
                failures++;
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 200 * Math.Pow(2, Math.Min(failures, 5)))), time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void Apply(KubeWatchEvent e)
    {
        lock (_gate)
        {
            var name = e.Object["metadata"]?["name"]?.GetValue<string>();
            switch (e.Type)
            {
                case WatchEventType.Added or WatchEventType.Modified when name is not null:
                    _objects[name] = e.Object;
                    break;
                case WatchEventType.Deleted when name is not null:
                    _objects.Remove(name);
                    break;
                case WatchEventType.Synced:
                    var listed = (e.Object["items"] as JsonArray ?? []).Select(i => i?["metadata"]?["name"]?.GetValue<string>()).OfType<string>().ToHashSet(StringComparer.Ordinal);
                    foreach (var gone in _objects.Keys.Where(k => !listed.Contains(k)).ToList())
                    {
                        _objects.Remove(gone);
                    }

                    Synced = true;
                    Volatile.Write(ref _outage, null);
                    break;
                default:
                    return;
            }
        }

        _changed();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // Stopping is what was asked.
        }

        _stop.Dispose();
    }
}

/// <summary>Since when a watch has not reached the API, and the last error.</summary>
internal sealed record Outage(DateTimeOffset Since, string Error);
