using System.Text.Json.Nodes;
using Capstan.Core.Planning;

namespace Capstan.Deploy;

/// <summary>The announcements of a deploy: its start, each gate's verdict, and its end.</summary>
public static class DeployAnnouncements
{
    /// <summary>The deploy starts.</summary>
    public static Announcement Start(Plan plan, ExecutorOptions options, DateTimeOffset at)
    {
        var groups = Groups(plan);
        var skipped = options.Gates is not null && options.SkipGatesReason is { } why ? $" (gates skipped: {why})" : string.Empty;
        return new Announcement("deploy.start", options.Actor, $"Started deploy [{plan.Id}] of {groups}: {options.Reason}{skipped}", at, Fields(plan, options));
    }

    /// <summary>Each gate's verdict, then the deploy's end.</summary>
    public static IEnumerable<Announcement> Finish(Plan plan, ExecutorOptions options, DeployResult result, DateTimeOffset at)
    {
        foreach (var gate in result.Gates)
        {
            var fields = Fields(plan, options);
            fields["gate"] = gate.Gate.StageWord;
            fields["passed"] = gate.Passed;
            fields["inconclusive"] = gate.Inconclusive;
            if (gate.Failure is { } failure)
            {
                fields["check"] = failure.Check;
                fields["expression"] = failure.Expression;
                fields["value"] = failure.Value is { } v && double.IsFinite(v) ? v : null;
                fields["limit"] = failure.Limit;
            }

            yield return new Announcement(gate.Passed ? "gate.pass" : "gate.fail", options.Actor, $"{Capitalised(gate.Summary)} [{plan.Id}]", at, fields);
        }

        var end = Fields(plan, options);
        end["succeeded"] = result.Succeeded;
        end["seconds"] = Math.Round(result.Duration.TotalSeconds, 1);
        end["cause"] = result.Cause;
        end["phases"] = PhaseTiming.ToJson(result.Phases);
        var duration = $"(duration: {Announcement.Duration(result.Duration)})";
        var text = result.Succeeded
            ? $"Synchronized {Groups(plan)}: {options.Reason} {duration}"
            : $"Deploy [{plan.Id}] of {Groups(plan)} failed{(result.RollbackFailed ? " and a rollback failed" : options.NoRollback ? string.Empty : " and was rolled back")}: {result.Cause} {duration}";
        yield return new Announcement("deploy.finish", options.Actor, text, at, end);
        foreach (var held in result.GateFailure is null && result.Halted is null ? [] : result.Releases.Where(r => r.State == ReleaseState.RolledBack))
        {
            var fields = Fields(plan, options);
            fields["release"] = held.Id.ToString();
            yield return new Announcement("hold", options.Actor, $"Held {held.Id} after {(result.GateFailure is null ? "the deploy was stopped" : "the gate failed")} [{plan.Id}]", at, fields);
        }
    }

    private static JsonObject Fields(Plan plan, ExecutorOptions options) => new()
    {
        ["plan"] = plan.Id,
        ["reason"] = options.Reason,
        ["gatesSkipped"] = options.Gates is not null ? options.SkipGatesReason : null,
        ["releases"] = new JsonArray([.. plan.Actions.Where(a => a.Change != ReleaseChange.NoOp).Select(a => (JsonNode)a.Id.ToString())]),
    };

    private static string Groups(Plan plan)
    {
        var names = plan.Actions.Where(a => a.Change != ReleaseChange.NoOp).Select(a => a.Id.Namespace).Distinct(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "nothing" : names.Count <= 4 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(3))} and {names.Count - 3} more groups";
    }

    private static string Capitalised(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];
}
