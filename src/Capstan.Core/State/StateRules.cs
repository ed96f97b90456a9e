using System.Collections.Immutable;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.State;

/// <summary>A change to the dynamic state that a user asks for.</summary>
public abstract record StateChange
{
    /// <summary>Make <paramref name="Datacenter"/> the primary datacenter.</summary>
    public sealed record SetPrimaryDc(string Datacenter) : StateChange;

    /// <summary>Make a datacenter read-only with a reason, or read-write when <paramref name="Reason"/> is null.</summary>
    public sealed record SetReadOnly(string Datacenter, string? Reason) : StateChange;

    /// <summary>Enable or disable periodic maintenance.</summary>
    public sealed record SetMaintenance(bool Enabled) : StateChange;

    /// <summary>Write a whole state into an empty store.</summary>
    public sealed record Initialize(DynamicState State) : StateChange;
}

/// <summary>What applying a change gives: the new state and a line describing the change, or why it was refused.</summary>
public sealed record StateChangeOutcome(DynamicState? NewState, string Description, string? Refusal, bool Unchanged)
{
    /// <summary>True when the change may be written.</summary>
    public bool Accepted => Refusal is null;
}

/// <summary>
/// The rules of the dynamic state: values must name the farm's datacenters, reasons must say something, and a write
/// that would leave a nonsense state (maintenance enabled while the primary datacenter is read-only) is refused
/// unless forced.
/// </summary>
public static class StateRules
{
    /// <summary>
    /// What part of a switchover a change is, when it is one: moving the primary to another datacenter, or making the
    /// primary read-only. Null for any other change (a secondary's read-only, lifting read-only, maintenance).
    /// </summary>
    public static string? SwitchoverStep(DynamicState current, StateChange change) => change switch
    {
        StateChange.SetPrimaryDc { Datacenter: var dc } when dc != current.PrimaryDc => $"moving the primary datacenter from {current.PrimaryDc} to {dc}",
        StateChange.SetReadOnly { Datacenter: var dc, Reason: not null } when dc == current.PrimaryDc && !current.IsReadOnly(dc) => $"making the primary datacenter {dc} read-only",
        _ => null,
    };

    /// <summary>Applies a change to the current state (null when the store holds none yet).</summary>
    public static StateChangeOutcome Apply(DynamicState? current, StateChange change, IReadOnlyList<string> datacenters, string reason, bool force)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return Refuse("a reason is required for every change of the state (--reason)");
        }

        if (FreeText.Problem("the reason", reason) is { } hostile)
        {
            return Refuse(hostile);
        }

        if (change is StateChange.Initialize init)
        {
            if (current is not null)
            {
                return Refuse("the state is already initialised; change it with 'capstan state set'");
            }

            return Check(init.State, datacenters) is { } bad
                ? Refuse(bad)
                : Finish(null, init.State, $"initialised: {Summary(init.State)}", force);
        }

        if (current is null)
        {
            return Refuse("the state has not been initialised; run 'capstan state init --primary-dc DC --reason …' first");
        }

        DynamicState next;
        string description;
        switch (change)
        {
            case StateChange.SetPrimaryDc p:
                if (UnknownDc(p.Datacenter, datacenters) is { } u1)
                {
                    return Refuse(u1);
                }

                next = current with { PrimaryDc = p.Datacenter };
                description = $"primary_dc: {current.PrimaryDc} -> {p.Datacenter}";
                break;

            case StateChange.SetReadOnly r:
                if (UnknownDc(r.Datacenter, datacenters) is { } u2)
                {
                    return Refuse(u2);
                }

                if (r.Reason is not null && r.Reason.Trim().Length == 0)
                {
                    return Refuse("a read-only reason must not be empty (use false to make the datacenter read-write)");
                }

                next = current with { ReadOnly = current.ReadOnly.SetItem(r.Datacenter, r.Reason) };
                description = $"read_only.{r.Datacenter}: {Show(current.ReadOnly.GetValueOrDefault(r.Datacenter))} -> {Show(r.Reason)}";
                break;

            case StateChange.SetMaintenance m:
                next = current with { MaintenanceEnabled = m.Enabled, MaintenanceReason = m.Enabled ? null : reason };
                description = $"maintenance_enabled: {Bool(current.MaintenanceEnabled)} -> {Bool(m.Enabled)}";
                break;

            default:
                return Refuse("unknown change");
        }

        return Finish(current, next, description, force);
    }

    /// <summary>Null when a state names only the farm's datacenters, else what is wrong.</summary>
    public static string? Check(DynamicState state, IReadOnlyList<string> datacenters)
    {
        if (UnknownDc(state.PrimaryDc, datacenters) is { } bad)
        {
            return "primary_dc: " + bad;
        }

        foreach (var dc in state.ReadOnly.Keys)
        {
            if (UnknownDc(dc, datacenters) is { } badRo)
            {
                return "read_only: " + badRo;
            }
        }

        return null;
    }

    /// <summary>A state with every datacenter read-write and maintenance enabled.</summary>
    public static DynamicState Fresh(string primaryDc, IReadOnlyList<string> datacenters) =>
        new(primaryDc, ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, datacenters.Select(dc => KeyValuePair.Create(dc, (string?)null))), true);

    /// <summary>What differs between two states, one "key: old -> new" line per changed value.</summary>
    public static IReadOnlyList<string> Differences(DynamicState? before, DynamicState after)
    {
        var lines = new List<string>();
        if (before?.PrimaryDc != after.PrimaryDc)
        {
            lines.Add($"primary_dc: {before?.PrimaryDc ?? "(none)"} -> {after.PrimaryDc}");
        }

        foreach (var dc in after.ReadOnly.Keys.Union(before?.ReadOnly.Keys ?? []).Order(StringComparer.Ordinal))
        {
            var old = before?.ReadOnly.GetValueOrDefault(dc);
            var now = after.ReadOnly.GetValueOrDefault(dc);
            if (before is null || old != now)
            {
                lines.Add($"read_only.{dc}: {(before is null ? "(none)" : Show(old))} -> {Show(now)}");
            }
        }

        if (before is null || before.MaintenanceEnabled != after.MaintenanceEnabled)
        {
            lines.Add($"maintenance_enabled: {(before is null ? "(none)" : Bool(before.MaintenanceEnabled))} -> {Bool(after.MaintenanceEnabled)}");
        }

        return lines;
    }

    /// <summary>A one-line summary of a state.</summary>
    public static string Summary(DynamicState s) =>
        $"primary_dc={s.PrimaryDc} read_only={{{string.Join(", ", s.ReadOnly.Select(kv => $"{kv.Key}: {Show(kv.Value)}"))}}} maintenance_enabled={Bool(s.MaintenanceEnabled)}";

    private static StateChangeOutcome Finish(DynamicState? current, DynamicState next, string description, bool force)
    {
        if (current is not null && Summary(current) == Summary(next))
        {
            return new StateChangeOutcome(current, description + " (unchanged)", null, Unchanged: true);
        }

        var problems = next.Incoherences();
        if (problems.Count > 0 && !force)
        {
            return Refuse($"refused: the result would be a nonsense state: {string.Join("; ", problems)}. Give --force to write it anyway");
        }

        return new StateChangeOutcome(next, description, null, Unchanged: false);
    }

    private static StateChangeOutcome Refuse(string why) => new(null, string.Empty, why, Unchanged: false);

    private static string? UnknownDc(string dc, IReadOnlyList<string> datacenters) =>
        datacenters.Contains(dc) ? null : $"unknown datacenter '{dc}' (allowed: {string.Join(", ", datacenters)})";

    private static string Show(string? readOnlyReason) => readOnlyReason is null ? "false" : $"\"{readOnlyReason}\"";

    private static string Bool(bool value) => value ? "true" : "false";
}
