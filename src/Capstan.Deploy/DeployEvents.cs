using Capstan.Core.Planning;

namespace Capstan.Deploy;

/// <summary>Where a release stands during a deploy.</summary>
public enum ReleaseState
{
    /// <summary>Waiting for its turn.</summary>
    Pending,

    /// <summary>Objects being applied.</summary>
    Applying,

    /// <summary>Waiting for the new revision to be ready.</summary>
    Waiting,

    /// <summary>Deployed (or unchanged).</summary>
    Done,

    /// <summary>Failed.</summary>
    Failed,

    /// <summary>Rolled back after a failure.</summary>
    RolledBack,

    /// <summary>Its rollback failed (or the rolled-back revision did not become ready): the release needs a repair.</summary>
    RollbackFailed,

    /// <summary>Never started because an earlier release failed.</summary>
    NotStarted,

    /// <summary>Nothing to do.</summary>
    Unchanged,
}

/// <summary>One progress event of a deploy.</summary>
public sealed record DeployEvent(DateTimeOffset At, ReleaseId? Release, ReleaseState? State, string Message)
{
    /// <summary>Where a gate's soak stands, on the events a gate sends while it samples.</summary>
    public Gates.GateProgress? Gate { get; init; }

    /// <summary>False for a gate's countdown ticks between samples: a live view shows them, a log leaves them out.</summary>
    public bool Logged => Gate is not { Sampled: false };

    /// <summary>The event as a log line: <c>12:03:04  eqiad/mw-web/canary  waiting for …</c>.</summary>
    public string LogLine() =>
        $"{At.UtcDateTime.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)}  {(Release?.ToString() ?? "-"),-36} {Message}";
}

/// <summary>Receives progress events (a terminal view, plain log lines, a JSON stream).</summary>
public interface IDeployObserver
{
    /// <summary>Called for every event, from any thread.</summary>
    void OnEvent(DeployEvent e);
}

/// <summary>An observer that drops every event (for callers that only want the result).</summary>
public sealed class SilentObserver : IDeployObserver
{
    /// <summary>The one instance.</summary>
    public static SilentObserver Instance { get; } = new();

    private SilentObserver()
    {
    }

    /// <inheritdoc/>
    public void OnEvent(DeployEvent e)
    {
    }
}

/// <summary>The outcome of one release.</summary>
public sealed record ReleaseOutcome(ReleaseId Id, ReleaseState State, int? Revision, string Detail);

/// <summary>The outcome of a deploy; <paramref name="Cause"/> says which release failed first and why.</summary>
public sealed record DeployResult(string PlanId, bool Succeeded, IReadOnlyList<ReleaseOutcome> Releases, TimeSpan Duration, string? Cause = null)
{
    /// <summary>True when a release's rollback failed: the farm holds neither the new nor the old revision of it.</summary>
    public bool RollbackFailed => Releases.Any(r => r.State == ReleaseState.RollbackFailed);

    /// <summary>The verdicts of the gates that ran, in order.</summary>
    public IReadOnlyList<Gates.GateVerdict> Gates { get; init; } = [];

    /// <summary>The failed gate that stopped the plan, or null.</summary>
    public Gates.GateVerdict? GateFailure => Gates.FirstOrDefault(g => !g.Passed);

    /// <summary>Why the gates were skipped (<c>--skip-gates --reason</c>), or null.</summary>
    public string? GatesSkipped { get; init; }

    /// <summary>Why the plan was stopped after a stage (<see cref="ExecutorOptions.Pause"/>), or null.</summary>
    public string? Halted { get; init; }

    /// <summary>How long each stage, gate and pause took, in order.</summary>
    public IReadOnlyList<PhaseTiming> Phases { get; init; } = [];

    /// <summary>When each release reached each state, in seconds since the plan started running (the deploy's timeline).</summary>
    public IReadOnlyDictionary<Capstan.Core.Planning.ReleaseId, IReadOnlyDictionary<ReleaseState, double>> Times { get; init; } =
        new Dictionary<Capstan.Core.Planning.ReleaseId, IReadOnlyDictionary<ReleaseState, double>>();

    /// <summary>The cancel request that stopped the plan (no release started after it; nothing was rolled back), or null.</summary>
    public CancelRequest? Cancelled { get; init; }
}

/// <summary>The time one phase of a deploy took: <c>stage testservers</c>, <c>gate after canaries</c>, <c>build</c>…</summary>
public sealed record PhaseTiming(string Name, TimeSpan Duration)
{
    /// <summary>When it started, since the plan started running (stages, gates and pauses); null for phases before it (build, plan).</summary>
    public TimeSpan? Start { get; init; }

    /// <summary>Phases as JSON: <c>[{"name": "build", "seconds": 0.081}, {"name": "gate after canaries", "seconds": 120.4, "start": 12.5}, …]</c>.</summary>
    public static System.Text.Json.Nodes.JsonArray ToJson(IEnumerable<PhaseTiming> phases) =>
        [.. phases.Select(p =>
        {
            var json = new System.Text.Json.Nodes.JsonObject { ["name"] = p.Name, ["seconds"] = Math.Round(p.Duration.TotalSeconds, 3) };
            if (p.Start is { } start)
            {
                json["start"] = Math.Round(start.TotalSeconds, 3);
            }

            return (System.Text.Json.Nodes.JsonNode)json;
        })];

    /// <summary>A release's times as JSON: <c>{"Applying": 0.01, "Waiting": 0.2, "Done": 3.4}</c>.</summary>
    public static System.Text.Json.Nodes.JsonObject TimesJson(IReadOnlyDictionary<ReleaseState, double>? times) =>
        new((times ?? new Dictionary<ReleaseState, double>()).OrderBy(kv => kv.Value).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (System.Text.Json.Nodes.JsonNode?)kv.Value)));
}
