using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Capstan.Kubernetes;

namespace Capstan.Clusters;

/// <summary>
/// A client of a local cluster that another process serves (<c>capstan local serve</c>): that server gets a new port,
/// CA and token each time it restarts, so when the cluster cannot be reached the client asks where it is served now
/// and, when that is somewhere else, continues there (the failed call is tried once more). A long-running process (the
/// dashboard) thus outlives a restart of the server it reads.
/// </summary>
internal sealed class ReconnectingClusterClient(ClusterConnection initial, Func<ClusterConnection?> resolve) : IClusterClient
{
    private readonly Lock _lock = new();
    private readonly List<KubeClient> _retired = [];
    private KubeClient _client = new(initial);
    private ClusterConnection _connection = initial;

    public Uri Server => Current.Server;

    private KubeClient Current
    {
        get
        {
            lock (_lock)
            {
                return _client;
            }
        }
    }

    public Task<JsonObject> ApplyAsync(JsonObject obj, bool force, bool dryRun, CancellationToken cancellationToken) =>
        CallAsync(c => c.ApplyAsync(obj, force, dryRun, cancellationToken));

    public Task<JsonObject> ApplyAsync(JsonObject obj, string fieldManager, CancellationToken cancellationToken) =>
        CallAsync(c => c.ApplyAsync(obj, fieldManager, cancellationToken));

    public Task<JsonObject> PatchAsync(ObjectRef reference, JsonObject mergePatch, string fieldManager, CancellationToken cancellationToken) =>
        CallAsync(c => c.PatchAsync(reference, mergePatch, fieldManager, cancellationToken));

    public Task<JsonObject?> GetAsync(ObjectRef reference, CancellationToken cancellationToken) =>
        CallAsync(c => c.GetAsync(reference, cancellationToken));

    public Task<ObjectList> ListAsync(string apiVersion, string kind, string? ns, string? labelSelector, CancellationToken cancellationToken) =>
        CallAsync(c => c.ListAsync(apiVersion, kind, ns, labelSelector, cancellationToken));

    public Task<bool> DeleteAsync(ObjectRef reference, Propagation propagation, CancellationToken cancellationToken) =>
        CallAsync(c => c.DeleteAsync(reference, propagation, cancellationToken));

    public Task<bool> IsNamespacedAsync(string apiVersion, string kind, CancellationToken cancellationToken) =>
        CallAsync(c => c.IsNamespacedAsync(apiVersion, kind, cancellationToken));

    public Task<RolloutStatus> GetRolloutStatusAsync(string ns, string name, CancellationToken cancellationToken) =>
        CallAsync(c => c.GetRolloutStatusAsync(ns, name, cancellationToken));

    public IAsyncEnumerable<KubeWatchEvent> WatchAsync(string apiVersion, string kind, string? ns, string? labelSelector, string? resourceVersion, CancellationToken cancellationToken) =>
        StreamAsync(c => c.WatchAsync(apiVersion, kind, ns, labelSelector, resourceVersion, cancellationToken), cancellationToken);

    public IAsyncEnumerable<string> ReadLogAsync(string ns, string pod, string container, bool follow, CancellationToken cancellationToken) =>
        StreamAsync(c => c.ReadLogAsync(ns, pod, container, follow, cancellationToken), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        List<KubeClient> all;
        lock (_lock)
        {
            all = [.. _retired, _client];
        }

        foreach (var client in all)
        {
            await client.DisposeAsync();
        }
    }

    private async Task<T> CallAsync<T>(Func<KubeClient, Task<T>> call)
    {
        var client = Current;
        try
        {
            return await call(client);
        }
        catch (KubeUnavailableException) when (Reconnect(client))
        {
            return await call(Current);
        }
    }

    /// <summary>A stream of the current client; when it fails to reach the server, the next stream asks where it is served now.</summary>
    private async IAsyncEnumerable<T> StreamAsync<T>(Func<KubeClient, IAsyncEnumerable<T>> open, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var client = Current;
        await using var items = open(client).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            try
            {
                if (!await items.MoveNextAsync())
                {
                    yield break;
                }
            }
            catch (KubeUnavailableException)
            {
                Reconnect(client);
                throw;
            }

            yield return items.Current;
        }
    }

    /// <summary>True when calls should go to a client other than <paramref name="failed"/>: the server is served elsewhere now.</summary>
    private bool Reconnect(KubeClient failed)
    {
        var next = resolve();
        lock (_lock)
        {
            if (!ReferenceEquals(_client, failed))
            {
                return true;
            }

            if (next is null || (next.Server == _connection.Server && next.Token == _connection.Token))
            {
                return false;
            }

            _retired.Add(_client);
            _client = new KubeClient(next);
            _connection = next;
            return true;
        }
    }
}
