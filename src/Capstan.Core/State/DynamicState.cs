using System.Collections.Immutable;

namespace Capstan.Core.State;

/// <summary>
/// The dynamic state that decides where MediaWiki writes and where maintenance runs: the primary datacenter,
/// read-only per datacenter (null when read-write, else the reason), and whether maintenance is enabled.
/// </summary>
public sealed record DynamicState(
    string PrimaryDc,
    ImmutableSortedDictionary<string, string?> ReadOnly,
    bool MaintenanceEnabled,
    string? MaintenanceReason = null)
{
    /// <summary>True when the datacenter is read-only.</summary>
    public bool IsReadOnly(string dc) => ReadOnly.TryGetValue(dc, out var reason) && reason is not null;

    /// <summary>
    /// The combinations that make no sense and that writes refuse without force: maintenance enabled while the
    /// primary datacenter is read-only. Empty when the state is coherent.
    /// </summary>
    public IReadOnlyList<string> Incoherences()
    {
        var problems = new List<string>();
        if (MaintenanceEnabled && IsReadOnly(PrimaryDc))
        {
            problems.Add($"maintenance is enabled while the primary datacenter {PrimaryDc} is read-only ({ReadOnly[PrimaryDc]}): no maintenance job can run");
        }

        return problems;
    }
}

/// <summary>
/// The maintenance gate of seed 000: CronJobs exist only where maintenance is enabled, the datacenter is the
/// primary and it is not read-only. Everywhere else an apply of the cron group removes them.
/// </summary>
public static class MaintenanceGate
{
    /// <summary>True when periodic maintenance may be scheduled in <paramref name="dc"/>.</summary>
    public static bool AllowsCronJobs(DynamicState state, string dc) =>
        state.MaintenanceEnabled && state.PrimaryDc == dc && !state.IsReadOnly(dc);

    /// <summary>Why the gate is closed in a datacenter, or null when it is open.</summary>
    public static string? ClosedBecause(DynamicState state, string dc)
    {
        if (!state.MaintenanceEnabled)
        {
            return "maintenance is disabled" + (state.MaintenanceReason is { } r ? $" ({r})" : string.Empty);
        }

        if (state.PrimaryDc != dc)
        {
            return $"{dc} is not the primary datacenter ({state.PrimaryDc} is)";
        }

        return state.IsReadOnly(dc) ? $"{dc} is read-only ({state.ReadOnly[dc]})" : null;
    }
}
