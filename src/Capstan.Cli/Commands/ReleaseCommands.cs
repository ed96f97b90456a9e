using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.Yaml;
using Capstan.Deploy;
using Capstan.Deploy.Json;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan diff | status | history | rollback</c>.</summary>
internal sealed class ReleaseCommands(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public IEnumerable<Command> Build() => [BuildDiff(), BuildStatus(), BuildHistory(), BuildRollback()];

    private Command BuildDiff()
    {
        var repo = CommonOptions.Repo();
        var dc = CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var release = CommonOptions.Release();
        var environment = CommonOptions.Environment();
        var subset = CommonOptions.Subset();
        var state = CommonOptions.State();
        var stateFile = CommonOptions.StateFile();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("diff", "Show what a deploy would change, object by object, as a unified diff (Secret values masked), and fields changed outside Capstan. Exit 0: no changes, 2: changes, 1: error")
        {
            repo, dc, ns, release, subset, environment, state, stateFile, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var (subsetName, testEnvironment) = CommonOptions.Scope(parse.GetValue(subset), parse.GetValue(environment), () => RepoSession.Open(env, parse.GetValue(repo)).Model, error);
            var selection = new RenderSelection(parse.GetValue(dc), parse.GetValue(ns), parse.GetValue(release), subsetName);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), parse.GetValue(stateFile), selection, ct, testEnvironment: testEnvironment);
            var request = new DeployRequest(selection, false, true, Planner.DefaultConcurrency, new ExecutorOptions()) { Preflight = false };
            var prepared = await session.Service().PrepareAsync(request, session.State, ct);
            foreach (var note in prepared.Notes)
            {
                error.WriteLine($"capstan: note: {FreeText.Printable(note)}");
            }

            var maskKey = Core.Security.MaskKey.ForRepo(session.Repo.Model.RepoRoot);
            var changes = new List<ObjectDiff>();
            var drifted = new List<ObjectDiff>();
            foreach (var ns2 in prepared.Plan.Namespaces)
            {
                changes.Add(new ObjectDiff($"{ns2.Datacenter}/{ns2.Namespace}", "Namespace", ns2.Namespace, "create", null, []));
            }

            foreach (var action in prepared.Plan.Actions)
            {
                foreach (var change in action.Apply)
                {
                    // With the server's verdict: live against what the apply would make of it (removals show); without
                    // one, the live fields Capstan sets against the desired object.
                    var (before, after) = change.Judged is { } judged
                        ? (ObjectComparison.Comparable(change.Live!), ObjectComparison.Comparable(judged))
                        : (change.Live is null ? null : (JsonObject)LiveProjection.Project(change.Desired, change.Live)!, change.Desired);
                    var desiredYaml = YamlEmitter.Emit(SecretMasker.Mask(after, maskKey));
                    var liveYaml = before is null ? string.Empty : YamlEmitter.Emit(SecretMasker.Mask(before, maskKey));
                    var path = $"{action.Id}/{change.Kind.ToLowerInvariant()}/{change.Name}";
                    var drift = action.Drift.Where(d => d.Kind == change.Kind && d.Name == change.Name).Select(d => (d.Path, d.Manager)).ToList();
                    changes.Add(new ObjectDiff(action.Id.ToString(), change.Kind, change.Name, change.Live is null ? "create" : "update",
                        UnifiedDiff.Create(liveYaml, desiredYaml, "live/" + path, "desired/" + path), drift));
                }

                // Drift on objects the deploy leaves as they are (fields others added and own, which an apply keeps).
                foreach (var group in action.Drift.Where(d => !action.Apply.Any(c => c.Kind == d.Kind && c.Name == d.Name)).GroupBy(d => (d.Kind, d.Name)))
                {
                    drifted.Add(new ObjectDiff(action.Id.ToString(), group.Key.Kind, group.Key.Name, "drift", null, [.. group.Select(d => (d.Path, d.Manager))]));
                }

                foreach (var prune in action.Prune)
                {
                    changes.Add(new ObjectDiff(action.Id.ToString(), prune.Kind, prune.Name, "delete", null, []));
                }
            }

            var releases = prepared.Plan.Actions.Count(a => a.Change != ReleaseChange.NoOp);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonObject
                {
                    ["changes"] = changes.Count,
                    ["releases"] = releases,
                    ["objects"] = new JsonArray([.. changes.Concat(drifted).Select(c => (JsonNode)new JsonObject
                    {
                        ["release"] = c.Release,
                        ["kind"] = c.Kind,
                        ["name"] = c.Name,
                        ["change"] = c.Change,
                        ["diff"] = c.Diff,
                        ["drift"] = new JsonArray([.. c.Drift.Select(d => (JsonNode)new JsonObject { ["field"] = d.Path, ["manager"] = d.Manager })]),
                    })]),
                }));
            }
            else
            {
                foreach (var c in changes.Concat(drifted))
                {
                    writer.Write(c.Change switch
                    {
                        "create" when c.Kind == "Namespace" => $"+ namespace {c.Name} in {c.Release.Split('/')[0]}\n",
                        "delete" => $"- {c.Release}/{c.Kind.ToLowerInvariant()}/{c.Name} (no longer rendered: deleted by the next deploy)\n",
                        "drift" => string.Empty,
                        _ => c.Diff,
                    });
                    foreach (var (field, manager) in c.Drift)
                    {
                        writer.WriteLine($"! drift: {c.Release}/{c.Kind.ToLowerInvariant()}/{c.Name} {field} was changed by {manager} since the last deploy" +
                            (c.Change == "drift" ? " (a deploy keeps it: the field is theirs)" : string.Empty));
                    }
                }
            }

            var driftNote = drifted.Count == 0 ? string.Empty : $"; {drifted.Count} objects with fields changed outside Capstan";
            error.WriteLine((changes.Count == 0 ? "capstan: no changes" : $"capstan: {changes.Count} changes in {releases} releases") + driftNote);
            return changes.Count == 0 ? ExitCodes.Success : ExitCodes.UserError;
        });
        return command;
    }

    /// <summary>One object a deploy would change: the unified diff for a create or update, and fields others changed.</summary>
    private sealed record ObjectDiff(string Release, string Kind, string Name, string Change, string? Diff, IReadOnlyList<(string Path, string Manager)> Drift);

    /// <summary>The namespaces to read: the one asked for, else the farm's (never the whole cluster: a deployer may only read those).</summary>
    private static IEnumerable<string> Namespaces(DeploySession session, string? ns) =>
        session.Repo.Model.Groups.Where(g => ns is null || g.Namespace == ns).Select(session.Repo.Model.LiveNamespace);

    private Command BuildStatus()
    {
        var repo = CommonOptions.Repo();
        var dc = CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var release = CommonOptions.Release();
        var output = CommonOptions.Output("table", "json");
        var environment = CommonOptions.TestEnvironment();
        var outOfSync = new Option<bool>("--out-of-sync") { Description = "List only the releases that are not Synced (OutOfSync, Drifted, Held or Unknown); exit 2 when there is any" };
        var command = new Command("status", "Every release in every datacenter: revision, sync (does it run what the repo says?), health, image, and whether all run the same MediaWiki version. Exit 2 with --out-of-sync when a release is not Synced")
        {
            repo, dc, ns, release, environment, output, outOfSync,
        };
        command.SetAction(async (parse, ct) =>
        {
            var selection = new RenderSelection(parse.GetValue(dc), parse.GetValue(ns), parse.GetValue(release));
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), null, null, selection, ct, readState: false, testEnvironment: parse.GetValue(environment));
            var holds = await new HoldStore(session.Store, session.Repo.Model.Project).ListAsync(ct);
            // The state the repo renders with, as render and diff read it (the state-seed while the store is empty); a
            // state that cannot be read (vanished, or the store is down) leaves the verdicts Unknown, and the status is still shown.
            Core.State.DynamicState? state;
            try
            {
                state = await session.Repo.ReadStateAsync(null, null, ct);
            }
            catch (CapstanException ex)
            {
                error.WriteLine($"capstan: warning: the sync of the releases is Unknown: {ex.Display}");
                state = null;
            }

            var status = await ReleaseSync.JudgeAsync(
                await FarmStatus.ReadAsync(session.Clusters, Namespaces(session, parse.GetValue(ns)), parse.GetValue(release), ct),
                session.Repo.Model, session.Repo.Renderer, session.Clusters, state, holds, ct);
            var onlyOutOfSync = parse.GetValue(outOfSync);
            if (onlyOutOfSync)
            {
                status = status with { Releases = [.. status.Releases.Where(r => r.Sync?.State != SyncState.Synced)] };
            }

            var code = onlyOutOfSync && status.Releases.Count > 0 ? ExitCodes.UserError : ExitCodes.Success;
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                var doc = status.ToJson();
                doc["holds"] = new JsonArray([.. holds.Select(h => JsonNode.Parse(h.ToJson()))]);
                writer.WriteLine(KubeSerializer.ToJson(doc));
                return code;
            }

            if (status.Releases.Count == 0)
            {
                writer.WriteLine(onlyOutOfSync ? "every release is Synced: it runs what the repo says" : "no release has been deployed");
                return code;
            }

            var table = new PlainTable("RELEASE", "REVISION", "SYNC", "HEALTH", "READY", "DEPLOYED", "BY", "MEDIAWIKI IMAGE");
            foreach (var r in status.Releases)
            {
                table.Add(r.Record.Id.ToString(), r.Record.Revision.ToString(CultureInfo.InvariantCulture), r.Sync?.State.ToString() ?? "-", r.Health.State.ToString(), r.Ready.ToString(),
                    r.Record.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), r.Record.Actor, r.MediaWikiImage ?? "-");
            }

            writer.Write(table.ToString());
            foreach (var r in status.Releases.Where(r => r.Sync is { Why: not null }))
            {
                writer.WriteLine($"{r.Record.Id}: {FreeText.Printable(r.Sync!.ToString())}");
            }

            var versions = status.Versions;
            writer.WriteLine(status.Consistent
                ? $"MediaWiki: every release runs {versions.FirstOrDefault()?.Key ?? "nothing yet"}"
                : "MediaWiki: releases run different versions:\n" + string.Join("\n", versions.Select(g => $"  {g.Key}: {string.Join(", ", g.Select(x => x.Record.Id.ToString()))}")));
            foreach (var hold in holds)
            {
                writer.WriteLine($"held: {FreeText.Printable(hold.ToString())}");
            }

            return code;
        });
        return command;
    }

    private Command BuildHistory()
    {
        var repo = CommonOptions.Repo();
        var dc = CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var release = CommonOptions.Release();
        var output = CommonOptions.Output("table", "json");
        var environment = CommonOptions.TestEnvironment();
        var command = new Command("history", "The deployed revisions of releases: who, when, why, in which plan") { repo, dc, ns, release, environment, output };
        command.SetAction(async (parse, ct) =>
        {
            var selection = new RenderSelection(parse.GetValue(dc), parse.GetValue(ns), parse.GetValue(release));
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), null, null, selection, ct, readState: false, testEnvironment: parse.GetValue(environment));
            var all = new List<ReleaseRecord>();
            foreach (var datacenter in session.Clusters.Datacenters.Order(StringComparer.Ordinal))
            {
                var records = await ReleaseRecords.ListAsync(session.Clusters[datacenter], datacenter, Namespaces(session, parse.GetValue(ns)), ct);
                all.AddRange(records.Values.SelectMany(r => r).Where(r => parse.GetValue(release) is not { } name || r.Id.Release == name));
            }

            var sorted = all.OrderBy(r => r.Id.ToString(), StringComparer.Ordinal).ThenBy(r => r.Revision).ToList();
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(RevisionJson.Serialize(sorted.Select(RevisionJson.Of), indented: true));
                return ExitCodes.Success;
            }

            var table = new PlainTable("RELEASE", "REVISION", "STATUS", "AT", "BY", "PLAN", "MEDIAWIKI IMAGE", "REASON");
            foreach (var r in sorted)
            {
                table.Add(
                    r.Id.ToString(), r.Revision.ToString(CultureInfo.InvariantCulture), r.Status, r.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), r.Actor, r.PlanId,
                    r.MediaWikiImage ?? "-", r.Reason);
            }

            writer.Write(table.ToString());
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildRollback()
    {
        var repo = CommonOptions.Repo();
        var target = new Argument<string?>("release") { Description = "The release: DC/NAMESPACE/RELEASE (or --plan/--last)", Arity = ArgumentArity.ZeroOrOne };
        var to = new Option<int?>("--to") { Description = "The revision to go back to (default: the one before the current)", HelpName = "REV" };
        var planOption = new Option<string?>("--plan") { Description = "Roll back every release this deploy plan changed, newest stage first", HelpName = "ID" };
        var last = new Option<bool>("--last") { Description = "Roll back every release the newest deploy changed" };
        var reason = CommonOptions.Reason("Why: recorded with the new revision (required)");
        var actor = CommonOptions.Actor();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("text", "json");
        var yes = new Option<bool>("--yes", "-y") { Description = "Roll back without asking" };
        var environment = CommonOptions.TestEnvironment();
        var command = new Command("rollback", "Re-apply a stored revision of a release, or undo a whole deploy plan (each recorded as a new revision, and held)")
        {
            target, to, planOption, last, repo, environment, reason, actor, state, output, yes,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (string.IsNullOrWhiteSpace(parse.GetValue(reason)))
            {
                throw new UserInputException("--reason is required: a rollback records why");
            }

            var wholePlan = parse.GetValue(planOption) is not null || parse.GetValue(last);
            if (new[] { parse.GetValue(target) is not null, parse.GetValue(planOption) is not null, parse.GetValue(last) }.Count(b => b) != 1)
            {
                throw new UserInputException("name one release (DC/NAMESPACE/RELEASE), or --plan ID, or --last");
            }

            if (wholePlan && parse.GetValue(to) is not null)
            {
                throw new UserInputException("--to names a revision of one release; a plan goes back to the revisions it replaced");
            }

            var json = parse.GetValue(output) == "json";
            var named = wholePlan ? null : ReleaseId.Parse(parse.GetValue(target)!) ?? throw new UserInputException($"'{parse.GetValue(target)}' is not DC/NAMESPACE/RELEASE");
            await using var session = await DeploySession.OpenAsync(
                env, parse.GetValue(repo), parse.GetValue(state), null, named is null ? new RenderSelection() : new RenderSelection(named.Datacenter, named.Namespace, named.Release), ct,
                testEnvironment: parse.GetValue(environment));
            var rollbacks = new Rollbacks(session.Repo.Model, session.Clusters, session.Store, session.Service(), TimeProvider.System);
            var skipped = new List<string>();
            IReadOnlyList<RollbackTarget> targets;
            string what;
            if (named is null)
            {
                var (planId, planTargets) = await rollbacks.PlanAsync(parse.GetValue(planOption), skipped, ct);
                (targets, what) = (planTargets, $"every release plan {planId} changed ({planTargets.Count})");
            }
            else
            {
                // Inside a test environment the release is named by its group (mw-web); its revisions live in the environment's namespace.
                var id = session.Repo.Model.FindGroup(named.Namespace) is { } group ? named with { Namespace = session.Repo.Model.LiveNamespace(group) } : named;
                var one = await rollbacks.TargetAsync(id, parse.GetValue(to), ct);
                (targets, what) = ([one], $"{id} from revision {one.Current.Revision} to revision {one.Target.Revision}");
            }

            foreach (var line in skipped)
            {
                error.WriteLine($"capstan: note: {line}");
            }

            if (targets.Count == 0)
            {
                error.WriteLine("capstan: nothing to roll back");
                return ExitCodes.Success;
            }

            if (!parse.GetValue(yes) && !env.Interactive)
            {
                throw new UserInputException("stdin is not a terminal, so nobody can confirm: pass --yes to roll back");
            }

            if (!parse.GetValue(yes))
            {
                console.Profile.Out.Writer.Write($"Roll back {what}? [y/N] ");
                if ((await env.Input.ReadLineAsync(ct))?.Trim() is not ("y" or "Y" or "yes"))
                {
                    error.WriteLine("capstan: not confirmed; nothing was applied");
                    return ExitCodes.UserError;
                }
            }

            var writer = console.Profile.Out.Writer;
            var results = new List<DeployResult>();
            foreach (var rollback in targets)
            {
                try
                {
                    results.Add(await rollbacks.RunAsync(rollback, session.Repo.Actor(parse.GetValue(actor)), parse.GetValue(reason)!, json ? new JsonEventObserver(writer) : new LineObserver(writer), ct));
                }
                catch (DeployLockedException ex)
                {
                    error.WriteLine($"capstan: error: {FreeText.Printable(ex.Message)}");
                    return ExitCodes.Locked;
                }

                if (results[^1].Succeeded)
                {
                    error.WriteLine($"capstan: {rollback.Release} is held at revision {rollback.Current.Revision}'s image: a deploy that would apply it again stops (lift with 'capstan deploy --release-hold {rollback.Release} --reason …')");
                }
                else
                {
                    // The rest of a plan's rollback waits: the farm is between revisions, and the summary says where.
                    break;
                }
            }

            foreach (var result in results)
            {
                if (json)
                {
                    writer.WriteLine(PlanJson.Of(result).ToJsonString());
                }
                else
                {
                    writer.Write(PlanView.Summary(result));
                }
            }

            return results.Select(ExitCodes.Of).FirstOrDefault(code => code != ExitCodes.Success, ExitCodes.Success);
        });
        return command;
    }
}
