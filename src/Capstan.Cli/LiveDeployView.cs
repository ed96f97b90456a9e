using System.Globalization;
using Capstan.Core.Planning;
using Capstan.Deploy;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Capstan.Cli;

/// <summary>
/// The terminal view of a running deploy: per datacenter and stage, how many releases are pending, running, done or
/// failed, and a line for each release in flight with its latest state (applying, waiting n/m ready…). Used only when
/// stdout is a terminal; otherwise progress is one plain line per event.
/// </summary>
internal sealed class LiveDeployView(Plan plan) : IDeployObserver
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ReleaseId, (ReleaseState State, string Message)> _states =
        plan.Actions.ToDictionary(a => a.Id, _ => (ReleaseState.Pending, string.Empty));

    private readonly Queue<string> _notes = new();
    private Capstan.Deploy.Gates.GateProgress? _gate;

    /// <summary>Called after each event so the display can redraw.</summary>
    public Action? Changed { get; set; }

    public void OnEvent(DeployEvent e)
    {
        lock (_lock)
        {
            if (e.Gate is { } gate)
            {
                _gate = gate.Left > TimeSpan.Zero ? gate : null;
            }
            else if (e.Release is null || e.State is null)
            {
                // A message of the whole deploy (the pre-pull's progress and warnings): the latest few show under the table.
                _notes.Enqueue(e.Message);
                if (_notes.Count > 4)
                {
                    _notes.Dequeue();
                }
            }
            else
            {
                _states[e.Release] = (e.State.Value, e.Message);
            }
        }

        Changed?.Invoke();
    }

    public IRenderable Render()
    {
        lock (_lock)
        {
            var summary = new Table().Border(TableBorder.Rounded).Title($"plan {Markup.Escape(plan.Id)}");
            foreach (var heading in new[] { "DC", "STAGE", "PENDING", "RUNNING", "DONE", "FAILED" })
            {
                summary.AddColumn(heading);
            }

            foreach (var group in plan.Actions.GroupBy(a => (a.Id.Datacenter, a.Stage)).OrderBy(g => g.Key.Stage).ThenBy(g => g.Key.Datacenter, StringComparer.Ordinal))
            {
                var states = group.Select(a => _states[a.Id].State).ToList();
                summary.AddRow(
                    Markup.Escape(group.Key.Datacenter),
                    group.Key.Stage.ToString().ToLowerInvariant(),
                    Count(states, ReleaseState.Pending),
                    Count(states, ReleaseState.Applying, ReleaseState.Waiting),
                    "[green]" + Count(states, ReleaseState.Done, ReleaseState.Unchanged) + "[/]",
                    "[red]" + Count(states, ReleaseState.Failed, ReleaseState.RolledBack, ReleaseState.RollbackFailed) + "[/]");
            }

            var active = new Table().Border(TableBorder.None).HideHeaders().AddColumn("release").AddColumn("state");
            foreach (var (id, (state, message)) in _states.Where(s => s.Value.State is ReleaseState.Applying or ReleaseState.Waiting or ReleaseState.Failed or ReleaseState.RollbackFailed).Take(15))
            {
                var colour = state is ReleaseState.Failed or ReleaseState.RollbackFailed ? "red" : "yellow";
                active.AddRow(Markup.Escape(id.ToString()), $"[{colour}]{Markup.Escape(message)}[/]");
            }

            var gateLines = new List<IRenderable>();
            if (_gate is { } g)
            {
                gateLines.Add(new Markup($"[yellow]gate after {g.Gate.StageWord}: soaking, {Math.Ceiling(g.Left.TotalSeconds).ToString(CultureInfo.InvariantCulture)}s left[/]"));
                foreach (var check in g.Latest.GroupBy(x => x.Check))
                {
                    var worst = check.OrderByDescending(x => x.Value ?? double.MinValue).First();
                    gateLines.Add(new Markup(Markup.Escape($"  {check.Key}: {(worst.Value is { } v ? Capstan.Deploy.Gates.GateSample.Format(v) : "no value yet")} ({worst.Limit}) on {worst.Release}")));
                }
            }

            return new Rows([summary, .. _notes.Select(n => new Markup(Markup.Escape(n))), .. gateLines, active]);
        }
    }

    private static string Count(List<ReleaseState> states, params ReleaseState[] which) =>
        states.Count(which.Contains).ToString(CultureInfo.InvariantCulture);
}
