using System.Net;
using System.Text.Json.Nodes;
using Capstan.State;

using Microsoft.Extensions.Logging;

namespace Capstan.Web;

/// <summary>
/// The live deploy view for every viewer of <c>/api/v1/deploy/events</c>: one watch of the state store and one view
/// computed per change, however many browsers follow it, and a bound on the streams in all and per client address, so
/// that open streams cost a core and memory no more than their number allows.
/// </summary>
internal sealed class DeployEventHub : IAsyncDisposable
{
    /// <summary>The most streams open at once.</summary>
    public const int MaxStreams = 64;

    /// <summary>The most streams one client address may hold open.</summary>
    public const int MaxStreamsPerClient = 6;

    private readonly DashboardData _data;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly SemaphoreSlim _started = new(1, 1);
    private readonly Lock _lock = new();
    private int _streams;
    private Task? _watching;
    private TaskCompletionSource<Snapshot> _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Snapshot? _current;

    private readonly ILogger _log;

    public DeployEventHub(DashboardData data, ILogger log)
    {
        _data = data;
        _log = log;
    }

    /// <summary>The streams open now.</summary>
    public int Streams
    {
        get
        {
            lock (_lock)
            {
                return _streams;
            }
        }
    }

    /// <summary>
    /// Admits one more stream from <paramref name="client"/>: a lease to dispose when it ends, or null with the reason
    /// when the bound is reached.
    /// </summary>
    public (IDisposable? Lease, string? Refusal) Admit(IPAddress client)
    {
        lock (_lock)
        {
            if (_streams >= MaxStreams)
            {
                return (null, $"this server already sends {MaxStreams} live deploy streams; try again later");
            }

            if (_perClient.GetValueOrDefault(client) >= MaxStreamsPerClient)
            {
                return (null, $"this client already follows {MaxStreamsPerClient} live deploy streams; close one first");
            }

            _streams++;
            _perClient[client] = _perClient.GetValueOrDefault(client) + 1;
            return (new Lease(this, client), null);
        }
    }

    /// <summary>The latest view: at once when it is newer than <paramref name="seen"/>, else when it changes or <paramref name="patience"/> passes.</summary>
    public async Task<Snapshot> NextAsync(long seen, Func<Snapshot, TimeSpan> patience, CancellationToken cancellationToken)
    {
        await EnsureStartedAsync(cancellationToken);
        Task<Snapshot> next;
        Snapshot current;
        lock (_lock)
        {
            current = _current!;
            next = _next.Task;
        }

        if (current.Version > seen)
        {
            return current;
        }

        try
        {
            return await next.WaitAsync(patience(current), cancellationToken);
        }
        catch (TimeoutException)
        {
            return current;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_watching is not null)
        {
            await _watching;
        }

        _stop.Dispose();
        _started.Dispose();
    }

    private async Task EnsureStartedAsync(CancellationToken cancellationToken)
    {
        if (_watching is not null)
        {
            return;
        }

        await _started.WaitAsync(cancellationToken);
        try
        {
            if (_watching is null)
            {
                var prefix = $"{_data.Model.Project}/deploy";
                var (_, revision) = await _data.Store.ListAsync(prefix, cancellationToken);
                await PublishAsync(cancellationToken);
                _watching = Task.Run(() => WatchAsync(prefix, revision, _stop.Token), CancellationToken.None);
            }
        }
        finally
        {
            _started.Release();
        }
    }

    /// <summary>One watch for all viewers; a view is computed after each change, and every few seconds while a deploy runs.</summary>
    private async Task WatchAsync(string prefix, long revision, CancellationToken cancellationToken)
    {
        using var changed = new SemaphoreSlim(0);
        var watching = Task.Run(
            async () =>
            {
                try
                {
                    await foreach (var _ in _data.Store.WatchAsync(prefix, revision + 1, cancellationToken))
                    {
                        if (changed.CurrentCount == 0)
                        {
                            changed.Release();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
                catch (Exception ex) when (ex is StateStoreException or IOException or HttpRequestException)
                {
                    // Views are still computed every few seconds; the log says why they may lag.
                    _log.LogWarning("the deploy stream lost its watch of the state store: {Problem}", ex.Message);
                }
            },
            CancellationToken.None);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var running = _current?.View["running"] is not null;
                await changed.WaitAsync(running ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(watching.IsCompleted ? 3 : 15), cancellationToken);
                if (Streams > 0 || running)
                {
                    await PublishAsync(cancellationToken);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is StateStoreException or IOException or HttpRequestException)
        {
            _log.LogError("the live deploy view stopped: {Problem}", ex.Message);
        }
        finally
        {
            await watching;
        }
    }

    private async Task PublishAsync(CancellationToken cancellationToken)
    {
        var view = await _data.DeployAsync(cancellationToken);
        var json = view.ToJsonString();
        TaskCompletionSource<Snapshot> done;
        Snapshot snapshot;
        lock (_lock)
        {
            // The same view again is no news: viewers only wake for a change (their keep-alive is their own timeout).
            if (_current is not null && _current.Json == json)
            {
                return;
            }

            snapshot = new Snapshot((_current?.Version ?? 0) + 1, view, json);
            _current = snapshot;
            done = _next;
            _next = new TaskCompletionSource<Snapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        done.TrySetResult(snapshot);
    }

    private void Release(IPAddress client)
    {
        lock (_lock)
        {
            _streams--;
            if (--_perClient[client] == 0)
            {
                _perClient.Remove(client);
            }
        }
    }

    /// <summary>A view as sent: its version (1 for the first), the data and its JSON text.</summary>
    public sealed record Snapshot(long Version, JsonObject View, string Json);

    private sealed class Lease(DeployEventHub hub, IPAddress client) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                hub.Release(client);
            }
        }
    }
}
