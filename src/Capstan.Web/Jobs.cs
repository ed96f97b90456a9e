using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Capstan.Deploy;
using Capstan.State;
using Microsoft.Extensions.Logging;

namespace Capstan.Web;

/// <summary>
/// One action started from the dashboard (a deploy, a rollback, a cancel, a lock): who, what, why, its log as it is
/// written, and how it ended. Every viewer reads the same log; a finished job is kept in the state store with its log.
/// </summary>
public sealed class DashboardJob : IDeployObserver
{
    /// <summary>Most log lines kept (a longer log keeps its first lines and says how many were left out).</summary>
    public const int MaxLines = 5_000;

    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _dropped;

    private DashboardJob(string id, string kind, string what, string actor, string reason, DateTimeOffset started)
    {
        (Id, Kind, What, Actor, Reason, Started) = (id, kind, what, actor, reason, started);
    }

    /// <summary>The job's id: its start time and a random suffix, safe in a URL.</summary>
    public string Id { get; }

    /// <summary>deploy, rollback, cancel, lock or unlock.</summary>
    public string Kind { get; }

    /// <summary>What it acts on, for people: "deploy codfw/mw-debug/pinkunicorn".</summary>
    public string What { get; }

    /// <summary>The signed-in user it runs as (recorded with everything it changes).</summary>
    public string Actor { get; }

    /// <summary>Why (recorded).</summary>
    public string Reason { get; }

    public DateTimeOffset Started { get; }

    public DateTimeOffset? Finished { get; private set; }

    /// <summary>running, succeeded, failed, cancelled or interrupted.</summary>
    public string State { get; private set; } = "running";

    /// <summary>How it ended, in a line; null while it runs.</summary>
    public string? Outcome { get; private set; }

    /// <summary>The deploy plan it runs, once known (a cancel of the job cancels this plan).</summary>
    public string? PlanId { get; set; }

    /// <summary>True once it ended.</summary>
    public bool Ended => Finished is not null;

    internal static DashboardJob Start(string kind, string what, string actor, string reason, DateTimeOffset now) =>
        new($"{now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}", kind, what, actor, reason, now);

    /// <summary>Appends a line and wakes every reader.</summary>
    public void Log(string line)
    {
        lock (_lock)
        {
            if (_lines.Count < MaxLines)
            {
                _lines.Add(line);
            }
            else
            {
                _dropped++;
            }

            Signal();
        }
    }

    /// <summary>A deploy's progress, as the CLI prints it on a pipe.</summary>
    public void OnEvent(DeployEvent e)
    {
        if (e.Logged)
        {
            Log(e.LogLine());
        }
    }

    /// <summary>Ends the job.</summary>
    internal void End(string state, string outcome, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (_dropped > 0)
            {
                _lines.Add($"({_dropped} more lines were left out)");
            }

            _lines.Add(outcome);
            (State, Outcome, Finished) = (state, outcome, now);
            Signal();
        }
    }

    /// <summary>The lines from <paramref name="from"/> on, whether the job ended, and a task that completes at the next change.</summary>
    public (IReadOnlyList<string> Lines, bool Ended, Task Changed) Since(int from)
    {
        lock (_lock)
        {
            return ([.. _lines.Skip(from)], Ended, _changed.Task);
        }
    }

    /// <summary>The job as JSON, with its log or without.</summary>
    public JsonObject ToJson(bool withLog)
    {
        lock (_lock)
        {
            var json = new JsonObject
            {
                ["id"] = Id,
                ["kind"] = Kind,
                ["what"] = What,
                ["actor"] = Actor,
                ["reason"] = Reason,
                ["started"] = Started.ToString("O", CultureInfo.InvariantCulture),
                ["finished"] = Finished?.ToString("O", CultureInfo.InvariantCulture),
                ["state"] = State,
                ["outcome"] = Outcome,
                ["planId"] = PlanId,
            };
            if (withLog)
            {
                json["log"] = new JsonArray([.. _lines.Select(l => (JsonNode)l)]);
            }

            return json;
        }
    }

    private void Signal()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}

/// <summary>
/// The dashboard's jobs: the ones running in this server, and the finished ones of every server of the farm (kept in
/// the state store with their logs, the newest <see cref="Kept"/>).
/// </summary>
public sealed class JobBoard(IStateStore store, string project, TimeProvider time, ILogger log) : IAsyncDisposable
{
    /// <summary>Most finished jobs kept.</summary>
    public const int Kept = 100;

    private readonly ConcurrentDictionary<string, (DashboardJob Job, Task Run)> _live = new(StringComparer.Ordinal);

    private string Prefix => $"{project}/dashboard-jobs/";

    /// <summary>
    /// Starts a job in the background (it outlives the request that asked; the server's stop interrupts it). The work
    /// returns the job's end state and outcome line; a refusal ends it as failed with the refusal's message.
    /// </summary>
    public DashboardJob Start(string kind, string what, string actor, string reason, Func<DashboardJob, CancellationToken, Task<(string State, string Outcome)>> work, CancellationToken stopping, string? planId = null)
    {
        var job = DashboardJob.Start(kind, what, actor, reason, time.GetUtcNow());
        job.PlanId = planId;
        job.Log($"{job.Started.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}  {kind} by {actor}: {reason}");
        var run = Task.Run(async () =>
        {
            string state, outcome;
            try
            {
                (state, outcome) = await work(job, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                (state, outcome) = ("interrupted", "interrupted: the dashboard stopped; a deploy continues where it stopped when run again");
            }
            catch (Exception ex) when (Refusals.Classify(ex) is { } refusal)
            {
                (state, outcome) = ("failed", "refused: " + refusal.Message);
            }
            catch (Exception ex)
            {
                log.LogError(ex, "job {Job} ({What}) failed", job.Id, job.What);
                (state, outcome) = ("failed", "failed: " + ex.Message);
            }

            job.End(state, outcome, time.GetUtcNow());
            if (await SaveAsync(job))
            {
                // Kept in the store: read from there from now on.
                _live.TryRemove(job.Id, out _);
            }
        }, CancellationToken.None);
        _live[job.Id] = (job, run);
        return job;
    }

    /// <summary>A job of this server, or a finished one of any; null when there is none.</summary>
    public async Task<JsonObject?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (_live.TryGetValue(id, out var live))
        {
            return live.Job.ToJson(withLog: true);
        }

        return await store.GetAsync(Prefix + id, cancellationToken) is { } stored ? JsonNode.Parse(stored.Value) as JsonObject : null;
    }

    /// <summary>True while a job of this server runs the deploy plan <paramref name="planId"/>.</summary>
    public bool Runs(string planId) => _live.Values.Any(l => !l.Job.Ended && l.Job.PlanId == planId);

    /// <summary>A job running (or just ended) in this server, for its live log.</summary>
    public DashboardJob? Live(string id) => _live.TryGetValue(id, out var live) ? live.Job : null;

    /// <summary>The jobs, newest first: this server's running ones, then the finished ones kept.</summary>
    public async Task<JsonObject> ListAsync(CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(Prefix, cancellationToken);
        var jobs = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (JsonNode.Parse(item.Value) is JsonObject job && job["id"]?.GetValue<string>() is { } id)
            {
                job.Remove("log");
                jobs[id] = job;
            }
        }

        foreach (var (id, live) in _live)
        {
            jobs[id] = live.Job.ToJson(withLog: false);
        }

        return new JsonObject { ["jobs"] = new JsonArray([.. jobs.OrderByDescending(kv => kv.Key, StringComparer.Ordinal).Select(kv => (JsonNode)kv.Value)]) };
    }

    /// <summary>Waits for the running jobs (the server is stopping, so they are being interrupted).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (_, run) in _live.Values)
        {
            await run;
        }
    }

    private async Task<bool> SaveAsync(DashboardJob job)
    {
        try
        {
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Prefix + job.Id, job.ToJson(withLog: true).ToJsonString())]), CancellationToken.None);
            var (items, _) = await store.ListAsync(Prefix, CancellationToken.None);
            var excess = items.OrderBy(i => i.Key, StringComparer.Ordinal).Take(Math.Max(0, items.Count - Kept)).ToList();
            if (excess.Count > 0)
            {
                await store.CommitAsync(new StoreTxn([], [.. excess.Select(i => (StoreOp)new StoreOp.Delete(i.Key))]), CancellationToken.None);
            }

            return true;
        }
        catch (Exception ex) when (ex is StateStoreException or IOException)
        {
            log.LogError(ex, "job {Job} could not be kept in the state store", job.Id);
            return false;
        }
    }
}
