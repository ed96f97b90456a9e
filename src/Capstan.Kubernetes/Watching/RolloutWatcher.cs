using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Kubernetes.Watching;

/// <summary>How long a wait may last.</summary>
public sealed record WaitLimits
{
    /// <summary>
    /// How long a rollout may go without progress (no more updated or available replicas) before the wait gives up, as
    /// progressDeadlineSeconds does on the server: a long rollout that keeps progressing is never cut.
    /// </summary>
    public TimeSpan NoProgressTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>An optional cap on the whole wait, progress or not; null for none.</summary>
    public TimeSpan? OverallTimeout { get; init; }

    /// <summary>How long the API may stay unreachable: the wait pauses, then resumes; longer is an <see cref="ApiOutageException"/>.</summary>
    public TimeSpan ApiOutageTolerance { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a wait with nothing new looks at the clock (for its timeouts).</summary>
    public TimeSpan Recheck { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>The cluster's API did not answer for longer than the wait's tolerance.</summary>
public sealed class ApiOutageException(TimeSpan duration, string message) : CapstanException(RefusalKind.Failure, message)
{
    /// <summary>How long it did not answer.</summary>
    public TimeSpan Duration { get; } = duration;
}

/// <summary>What a judge sees: the watched objects of one namespace, as the watches hold them now.</summary>
public sealed class WatchedNamespace
{
    private readonly IReadOnlyDictionary<(string ApiVersion, string Kind), SharedWatch> _watches;

    internal WatchedNamespace(string ns, IReadOnlyDictionary<(string ApiVersion, string Kind), SharedWatch> watches)
    {
        Namespace = ns;
        _watches = watches;
    }

    /// <summary>The namespace.</summary>
    public string Namespace { get; }

    /// <summary>The objects of a watched kind (never changed in place; do not change them).</summary>
    public IReadOnlyList<JsonObject> Objects(string apiVersion, string kind) => _watches[(apiVersion, kind)].Objects;

    /// <summary>One object of a watched kind, or null.</summary>
    public JsonObject? Get(string apiVersion, string kind, string name) =>
        Objects(apiVersion, kind).FirstOrDefault(o => o["metadata"]?["name"]?.GetValue<string>() == name);
}

/// <summary>
/// Waits on a cluster by watching it, not by polling: one watch per namespace and kind, shared by every wait in that
/// namespace (the releases of a deploy, a switchover's restarts, a script's Job, the maintenance gate) and kept until the
/// watcher is disposed. A wait re-judges on every change of its namespace and looks at its <see cref="TimeProvider"/>
/// for its timeouts; an API outage pauses it up to a tolerance.
/// </summary>
public sealed class RolloutWatcher(IClusterClient client, TimeProvider time) : IAsyncDisposable
{
    /// <summary>The kinds a Deployment's rollout is judged from.</summary>
    public static readonly IReadOnlyList<(string ApiVersion, string Kind)> RolloutKinds = [("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("v1", "Pod")];

    private readonly Dictionary<(string Namespace, string ApiVersion, string Kind), SharedWatch> _watches = [];
    private readonly Dictionary<string, TaskCompletionSource> _changes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>
    /// Label selectors by kind: a kind named here is watched only where its objects match (a reader of release records
    /// watches only the record Secrets, never the others).
    /// </summary>
    public IReadOnlyDictionary<(string ApiVersion, string Kind), string> LabelSelectors { get; init; } = new Dictionary<(string, string), string>();

    /// <summary>The clock of every wait.</summary>
    public TimeProvider Time => time;

    /// <summary>
    /// Waits until <paramref name="judge"/> gives an answer, judging the namespace's watched objects at once and after
    /// every change (and every <see cref="WaitLimits.Recheck"/>, so a judge may answer on time alone). While a watch
    /// cannot reach the API the judge is not asked; <paramref name="report"/> hears of the outage and of the recovery,
    /// and past <see cref="WaitLimits.ApiOutageTolerance"/> the wait ends with <see cref="ApiOutageException"/>.
    /// </summary>
    public async Task<T> WaitAsync<T>(
        string ns,
        IReadOnlyList<(string ApiVersion, string Kind)> kinds,
        Func<WatchedNamespace, T?> judge,
        WaitLimits limits,
        Action<string>? report,
        CancellationToken cancellationToken)
        where T : class
    {
        var view = new WatchedNamespace(ns, kinds.ToDictionary(k => k, k => Acquire(ns, k.ApiVersion, k.Kind)));
        DateTimeOffset? outageReported = null;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                changed = Changes(ns).Task;
            }

            var watches = kinds.Select(k => Acquire(ns, k.ApiVersion, k.Kind)).ToList();
            if (watches.Select(w => w.Refused).FirstOrDefault(r => r is not null) is { } refused)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(refused);
            }

            var outage = watches.Select(w => w.Unavailable).OfType<Outage>().OrderBy(u => u.Since).FirstOrDefault();
            var now = time.GetUtcNow();
            if (outage is not null)
            {
                if (now - outage.Since > limits.ApiOutageTolerance)
                {
                    throw new ApiOutageException(now - outage.Since, $"the cluster's API was unreachable for {(now - outage.Since).TotalSeconds:0} s (tolerance {limits.ApiOutageTolerance.TotalSeconds:0} s): {outage.Error}");
                }

                if (outageReported is null)
                {
                    outageReported = outage.Since;
                    report?.Invoke($"the cluster's API is unreachable ({outage.Error}); waiting up to {limits.ApiOutageTolerance.TotalSeconds:0} s for it");
                }
            }
            else if (watches.All(w => w.Synced))
            {
                if (outageReported is { } since)
                {
                    report?.Invoke($"the cluster's API answers again after {(now - since).TotalSeconds:0} s; resuming");
                    outageReported = null;
                }

                if (judge(view) is { } answer)
                {
                    return answer;
                }
            }

            using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var delay = Task.Delay(limits.Recheck, time, wake.Token);
            await Task.WhenAny(changed, delay).WaitAsync(cancellationToken);
            await wake.CancelAsync();
            await delay.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Waits for a Deployment's rollout, as <see cref="RolloutStatus"/> judges it, on watches of its namespace's
    /// Deployments, ReplicaSets and Pods. <paramref name="generation"/> is the generation the caller's write produced: an
    /// older Deployment still in the cache is never taken for the result. Returns null when it rolled out, else the
    /// problem (paused, the progress deadline exceeded, no progress for <see cref="WaitLimits.NoProgressTimeout"/>, or
    /// past the optional overall timeout). <paramref name="report"/> hears the progress as it changes.
    /// </summary>
    public async Task<string?> WaitForRolloutAsync(string ns, string name, long generation, WaitLimits limits, Action<string>? report, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        var lastProgress = started;
        (int Updated, int Available)? seen = null;
        var last = string.Empty;
        var resumed = false;
        var verdict = await WaitAsync<Verdict>(
            ns,
            RolloutKinds,
            view =>
            {
                var now = time.GetUtcNow();
                if (resumed)
                {
                    // Time the API was away is no rollout's fault.
                    lastProgress = now;
                    resumed = false;
                }

                var deployment = view.Get("apps/v1", "Deployment", name);
                if (deployment is null || (JsonNumbers(deployment["metadata"]?["generation"]) ?? 0) < generation)
                {
                    return now - lastProgress > limits.NoProgressTimeout
                        ? new Verdict($"Deployment {name}: not seen at generation {generation} for {limits.NoProgressTimeout.TotalSeconds:0} s")
                        : null;
                }

                var status = RolloutStatus.Of(deployment, view.Objects("apps/v1", "ReplicaSet"), view.Objects("v1", "Pod"));
                if (status.Done)
                {
                    return Verdict.RolledOut;
                }

                var problem = status.PodProblem is null ? string.Empty : $": {status.PodProblem}";
                if (status.Failed)
                {
                    return new Verdict($"Deployment {name}: " + (status.Paused ? status.Message : "progress deadline exceeded" + problem));
                }

                // Progress is more updated or more available replicas than seen so far; a count that drops and recovers
                // (a crash-looping pod) is not progress.
                if (seen is null || status.Updated > seen.Value.Updated || status.Available > seen.Value.Available)
                {
                    seen = (Math.Max(status.Updated, seen?.Updated ?? 0), Math.Max(status.Available, seen?.Available ?? 0));
                    lastProgress = now;
                }

                if (now - lastProgress > limits.NoProgressTimeout)
                {
                    return new Verdict($"Deployment {name}: no progress for {limits.NoProgressTimeout.TotalSeconds:0} s ({status.Available}/{status.Desired} ready){problem}");
                }

                if (limits.OverallTimeout is { } overall && now - started > overall)
                {
                    return new Verdict($"Deployment {name}: not ready after {overall.TotalSeconds:0} s ({status.Available}/{status.Desired} ready){problem}");
                }

                var progress = status.OldPods > 0
                    ? $"waiting for {status.OldPods} old pods to terminate (Recreate)"
                    : $"waiting {status.Available}/{status.Desired} ready" + (status.PodProblem is null ? string.Empty : $" ({status.PodProblem})");
                if (progress != last)
                {
                    report?.Invoke(progress);
                    last = progress;
                }

                return null;
            },
            limits,
            message =>
            {
                resumed |= message.Contains("answers again", StringComparison.Ordinal);
                report?.Invoke(message);
            },
            cancellationToken);
        return verdict.Problem;
    }

    /// <summary>
    /// Waits for an applied workload of any other kind (a StatefulSet, DaemonSet, Job, Pod…) as
    /// <see cref="ObjectReadiness"/> judges it, on a watch of its kind in its namespace. Returns null when it is current,
    /// else the problem: it failed, or its status did not change for <see cref="WaitLimits.NoProgressTimeout"/>.
    /// </summary>
    public async Task<string?> WaitForObjectAsync(string ns, string apiVersion, string kind, string name, long generation, WaitLimits limits, Action<string>? report, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        var lastProgress = started;
        var last = string.Empty;
        var verdict = await WaitAsync<Verdict>(
            ns,
            [(apiVersion, kind)],
            view =>
            {
                var now = time.GetUtcNow();
                var obj = view.Get(apiVersion, kind, name);
                var (state, message) = obj is null || (JsonNumbers(obj["metadata"]?["generation"]) ?? 0) < generation
                    ? (Readiness.InProgress, $"waiting to see generation {generation}")
                    : ObjectReadiness.Judge(obj);
                switch (state)
                {
                    case Readiness.Current:
                        return Verdict.RolledOut;
                    case Readiness.Failed:
                        return new Verdict($"{kind} {name}: {message}");
                }

                if (message != last)
                {
                    report?.Invoke($"{kind} {name}: {message}");
                    last = message;
                    lastProgress = now;
                }

                if (now - lastProgress > limits.NoProgressTimeout)
                {
                    return new Verdict($"{kind} {name}: no progress for {limits.NoProgressTimeout.TotalSeconds:0} s ({message})");
                }

                return limits.OverallTimeout is { } overall && now - started > overall
                    ? new Verdict($"{kind} {name}: not ready after {overall.TotalSeconds:0} s ({message})")
                    : null;
            },
            limits,
            report,
            cancellationToken);
        return verdict.Problem;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        List<SharedWatch> watches;
        lock (_gate)
        {
            _disposed = true;
            watches = [.. _watches.Values];
            _watches.Clear();
        }

        foreach (var watch in watches)
        {
            // Each stops on its own: one that failed never keeps the others running.
            try
            {
                await watch.DisposeAsync();
            }
            catch (Exception ex) when (ex is KubeApiException or KubeUnavailableException or KubeCredentialException or HttpRequestException or IOException)
            {
                // Its failure was reported to the waits that used it.
            }
        }
    }

    private SharedWatch Acquire(string ns, string apiVersion, string kind)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_watches.TryGetValue((ns, apiVersion, kind), out var watch))
            {
                watch = new SharedWatch(client, apiVersion, kind, ns, time, () => Changed(ns), LabelSelectors.GetValueOrDefault((apiVersion, kind)));
                _watches[(ns, apiVersion, kind)] = watch;
            }

            return watch;
        }
    }

    private TaskCompletionSource Changes(string ns)
    {
        if (!_changes.TryGetValue(ns, out var tcs))
        {
            tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _changes[ns] = tcs;
        }

        return tcs;
    }

    private void Changed(string ns)
    {
        TaskCompletionSource? fired;
        lock (_gate)
        {
            _changes.Remove(ns, out fired);
        }

        fired?.TrySetResult();
    }

    private static long? JsonNumbers(JsonNode? node) => Core.Kubernetes.JsonNumbers.Long(node);

    private sealed record Verdict(string? Problem)
    {
        public static readonly Verdict RolledOut = new((string?)null);

    }
}
