using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Deploy;

/// <summary>What a switchover is asked to do.</summary>
public sealed record SwitchoverRequest(string From, string To, bool LiveTest, string Actor, string Reason)
{
    /// <summary>How long running maintenance Jobs may take to stop.</summary>
    public TimeSpan JobTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the restart of the job runners may take.</summary>
    public TimeSpan RolloutTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Stop after this step (by name), leaving the journal for a resume.</summary>
    public string? Until { get; init; }
}

/// <summary>Where a step of a switchover stands.</summary>
public enum StepStatus
{
    /// <summary>Not run yet.</summary>
    Pending,

    /// <summary>Started and not finished (the run was interrupted, or is running now).</summary>
    Running,

    /// <summary>Acted and verified.</summary>
    Done,

    /// <summary>Not needed in this run (said why).</summary>
    Skipped,

    /// <summary>Its action or its verification failed.</summary>
    Failed,
}

/// <summary>One step of a switchover as recorded in the journal.</summary>
public sealed record SwitchoverStep(string Name, string Title, StepStatus Status, DateTimeOffset? Started, DateTimeOffset? Finished, string Detail)
{
    /// <summary>How long it took, when it finished.</summary>
    public TimeSpan? Duration => Started is { } s && Finished is { } f ? f - s : null;
}

/// <summary>The journal of a switchover (kept in the state store) and, at the end, its summary.</summary>
public sealed record SwitchoverJournal(
    string Id,
    string From,
    string To,
    bool LiveTest,
    string Actor,
    string Reason,
    DateTimeOffset Started,
    bool MaintenanceWasEnabled,
    IReadOnlyList<SwitchoverStep> Steps,
    DateTimeOffset? ReadOnlySince = null,
    DateTimeOffset? ReadOnlyUntil = null,
    string? RestartedAt = null)
{
    /// <summary>Every step done or skipped.</summary>
    public bool Complete => Steps.All(s => s.Status is StepStatus.Done or StepStatus.Skipped);

    /// <summary>How long MediaWiki was read-only (so far, when the switchover has not set it read-write yet).</summary>
    public TimeSpan? ReadOnlyWindow => ReadOnlySince is { } s && ReadOnlyUntil is { } u ? u - s : null;

    /// <summary>Wall time from the first step's start to the last step's end.</summary>
    public TimeSpan? Total => Steps.LastOrDefault(s => s.Finished is not null)?.Finished - Started;

    /// <summary>The journal as JSON (also the <c>--output json</c> summary).</summary>
    public JsonObject ToJson() => new()
    {
        ["id"] = Id,
        ["from"] = From,
        ["to"] = To,
        ["liveTest"] = LiveTest,
        ["actor"] = Actor,
        ["reason"] = Reason,
        ["started"] = Stamp(Started),
        ["maintenanceWasEnabled"] = MaintenanceWasEnabled,
        ["complete"] = Complete,
        ["readOnlySince"] = ReadOnlySince is { } s ? Stamp(s) : null,
        ["readOnlyUntil"] = ReadOnlyUntil is { } u ? Stamp(u) : null,
        ["readOnlySeconds"] = ReadOnlyWindow?.TotalSeconds,
        ["totalSeconds"] = Total?.TotalSeconds,
        ["restartedAt"] = RestartedAt,
        ["steps"] = new JsonArray([.. Steps.Select(step => (JsonNode)new JsonObject
        {
            ["name"] = step.Name,
            ["title"] = step.Title,
            ["status"] = step.Status.ToString().ToLowerInvariant(),
            ["started"] = step.Started is { } a ? Stamp(a) : null,
            ["finished"] = step.Finished is { } b ? Stamp(b) : null,
            ["seconds"] = step.Duration?.TotalSeconds,
            ["detail"] = step.Detail,
        })]),
    };

    /// <summary>Reads a journal written by <see cref="ToJson"/>.</summary>
    public static SwitchoverJournal Parse(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        return new SwitchoverJournal(
            Str(node["id"])!,
            Str(node["from"])!,
            Str(node["to"])!,
            node["liveTest"]?.GetValue<bool>() ?? false,
            Str(node["actor"]) ?? "unknown",
            Str(node["reason"]) ?? string.Empty,
            Time(node["started"]) ?? DateTimeOffset.UnixEpoch,
            node["maintenanceWasEnabled"]?.GetValue<bool>() ?? true,
            [.. (node["steps"] as JsonArray ?? []).Select(s => new SwitchoverStep(
                Str(s!["name"])!,
                Str(s["title"]) ?? string.Empty,
                Enum.Parse<StepStatus>(Str(s["status"]) ?? "pending", ignoreCase: true),
                Time(s["started"]),
                Time(s["finished"]),
                Str(s["detail"]) ?? string.Empty))],
            Time(node["readOnlySince"]),
            Time(node["readOnlyUntil"]),
            Str(node["restartedAt"]));
    }

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static string? Str(JsonNode? n) => n?.GetValue<string>();

    private static DateTimeOffset? Time(JsonNode? n) => n is null ? null : DateTimeOffset.Parse(n.GetValue<string>(), CultureInfo.InvariantCulture);
}

/// <summary>A step failed its precondition, action or verification; the journal says where to resume.</summary>
public sealed class SwitchoverFailedException(string step, string message) : CapstanException(RefusalKind.Failure, $"step {step} failed: {message}")
{
    /// <summary>The step.</summary>
    public string Step { get; } = step;
}
