namespace Capstan.Core.Planning;

/// <summary>
/// Decides which release actions may start: those whose dependencies are done, within the per-cluster concurrency
/// limit. The executor drives it with real deploys; tests drive it with simulated ones. Not thread-safe: one owner.
/// </summary>
public sealed class PlanScheduler
{
    private readonly Plan _plan;
    private readonly Dictionary<ReleaseAction, IReadOnlyList<ReleaseAction>> _dependencies;
    private readonly HashSet<ReleaseAction> _running = [];
    private readonly HashSet<ReleaseAction> _done = [];
    private readonly HashSet<ReleaseAction> _failed = [];

    /// <summary>Creates a scheduler for a plan.</summary>
    public PlanScheduler(Plan plan)
    {
        _plan = plan;
        _dependencies = plan.Actions.ToDictionary(a => a, plan.Dependencies);
    }

    /// <summary>True when every action has finished, or a failure stops new starts and nothing runs.</summary>
    public bool Finished => _running.Count == 0 && (_failed.Count > 0 || _done.Count == _plan.Actions.Count);

    /// <summary>True once an action has failed: no further action starts.</summary>
    public bool Stopped => _failed.Count > 0;

    /// <summary>The actions that may start now, marking them running.</summary>
    public IReadOnlyList<ReleaseAction> StartNext()
    {
        if (Stopped)
        {
            return [];
        }

        var started = new List<ReleaseAction>();
        foreach (var action in _plan.Actions)
        {
            if (_running.Contains(action) || _done.Contains(action) || _failed.Contains(action))
            {
                continue;
            }

            if (_running.Count(r => r.Id.Datacenter == action.Id.Datacenter) >= _plan.ConcurrencyPerCluster)
            {
                continue;
            }

            if (_dependencies[action].All(_done.Contains))
            {
                _running.Add(action);
                started.Add(action);
            }
        }

        return started;
    }

    /// <summary>Records that an action finished.</summary>
    public void Complete(ReleaseAction action, bool succeeded)
    {
        _running.Remove(action);
        (succeeded ? _done : _failed).Add(action);
    }

    /// <summary>The actions done, in completion order is not kept: callers keep their own order.</summary>
    public IReadOnlyCollection<ReleaseAction> Done => _done;
}
