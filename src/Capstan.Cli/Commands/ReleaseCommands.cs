using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.Yaml;
using Capstan.Deploy;
using Capstan.Kubernetes;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan diff | status | history | rollback | lock | unlock</c>.</summary>
internal sealed class ReleaseCommands(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public IEnumerable<Command> Build() => [BuildDiff(), BuildStatus(), BuildHistory(), BuildRollback(), BuildLock(), BuildUnlock()];

    private Command BuildDiff()
    {
        var repo = CommonOptions.Repo();
        var dc = CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var release = CommonOptions.Release();
        var environment = CommonOptions.Environment();
        var state = CommonOptions.State();
        var stateFile = CommonOptions.StateFile();
        var command = new Command("diff", "Show what a deploy would change, object by object, as a unified diff (Secret values masked), and fields changed outside Capstan. Exit 0: no changes, 2: changes, 1: error")
        {
            repo, dc, ns, release, environment, state, stateFile,
        };
        command.SetAction(async (parse, ct) =>
        {
            var selection = new RenderSelection(parse.GetValue(dc), parse.GetValue(ns), parse.GetValue(release), parse.GetValue(environment));
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), parse.GetValue(stateFile), selection, ct);
            var request = new DeployRequest(selection, false, true, Planner.DefaultConcurrency, new ExecutorOptions()) { Preflight = false };
            var prepared = await session.Service().PrepareAsync(request, session.State, ct);
            var writer = console.Profile.Out.Writer;
            var changes = 0;
            foreach (var ns2 in prepared.Plan.Namespaces)
            {
                writer.WriteLine($"+ namespace {ns2.Namespace} in {ns2.Datacenter}");
                changes++;
            }

            foreach (var action in prepared.Plan.Actions)
            {
                foreach (var change in action.Apply)
                {
                    var desiredYaml = YamlEmitter.Emit(SecretMasker.Mask(change.Desired));
                    var liveYaml = change.Live is null ? string.Empty : YamlEmitter.Emit(SecretMasker.Mask((JsonObject)LiveProjection.Project(change.Desired, change.Live)!));
                    var path = $"{action.Id}/{change.Kind.ToLowerInvariant()}/{change.Name}";
                    writer.Write(UnifiedDiff.Create(liveYaml, desiredYaml, "live/" + path, "desired/" + path));
                    changes++;
                    if (change.Live is not null)
                    {
                        foreach (var (field, manager) in LiveProjection.Drift(change.Desired, change.Live))
                        {
                            writer.WriteLine($"! drift: {path} {field} was changed by {manager} since the last deploy");
                        }
                    }
                }

                foreach (var prune in action.Prune)
                {
                    writer.WriteLine($"- {action.Id}/{prune.Kind.ToLowerInvariant()}/{prune.Name} (no longer rendered: deleted by the next deploy)");
                    changes++;
                }
            }

            error.WriteLine(changes == 0 ? "capstan: no changes" : $"capstan: {changes} changes in {prepared.Plan.Actions.Count(a => a.Change != ReleaseChange.NoOp)} releases");
            return changes == 0 ? ExitCodes.Success : ExitCodes.UserError;
        });
        return command;
    }

    private Command BuildStatus()
    {
        var repo = CommonOptions.Repo();
        var dc = CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var output = CommonOptions.Output("table", "json");
        var command = new Command("status", "Every release in every datacenter: revision, readiness, image, and whether all run the same MediaWiki version") { repo, dc, ns, output };
        command.SetAction(async (parse, ct) =>
        {
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), null, null, new RenderSelection(parse.GetValue(dc), parse.GetValue(ns)), ct);
            var rows = new List<(ReleaseRecord Record, string Ready)>();
            foreach (var datacenter in session.Clusters.Datacenters.Order(StringComparer.Ordinal))
            {
                var client = session.Clusters[datacenter];
                var records = await ReleaseRecords.ListAsync(client, datacenter, parse.GetValue(ns), ct);
                foreach (var (id, history) in records.OrderBy(r => r.Key.Namespace, StringComparer.Ordinal).ThenBy(r => r.Key.Release, StringComparer.Ordinal))
                {
                    var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history[0];
                    var ready = "-";
                    foreach (var deployment in current.Manifest.Where(o => o["kind"]!.GetValue<string>() == "Deployment"))
                    {
                        try
                        {
                            var s = await client.GetRolloutStatusAsync(id.Namespace, deployment["metadata"]!["name"]!.GetValue<string>(), ct);
                            ready = $"{s.Available}/{s.Desired}" + (s.PodProblem is null ? string.Empty : $" ({s.PodProblem})");
                        }
                        catch (KubeNotFoundException)
                        {
                            ready = "missing";
                        }
                    }

                    rows.Add((current, ready));
                }
            }

            var versions = rows.Select(r => (r.Record, Image: r.Record.Images.Where(kv => kv.Key.EndsWith("-app", StringComparison.Ordinal)).Select(kv => kv.Value).FirstOrDefault()))
                .Where(r => r.Image is not null).GroupBy(r => r.Image!).ToList();
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonObject
                {
                    ["releases"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
                    {
                        ["release"] = r.Record.Id.ToString(),
                        ["revision"] = r.Record.Revision,
                        ["status"] = r.Record.Status,
                        ["ready"] = r.Ready,
                        ["deployedAt"] = r.Record.At.ToString("O", CultureInfo.InvariantCulture),
                        ["by"] = r.Record.Actor,
                        ["images"] = new JsonObject(r.Record.Images.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                    })]),
                    ["mediawikiVersions"] = new JsonObject(versions.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)new JsonArray([.. g.Select(x => (JsonNode)x.Record.Id.ToString())])))),
                    ["consistent"] = versions.Count <= 1,
                }));
                return ExitCodes.Success;
            }

            if (rows.Count == 0)
            {
                writer.WriteLine("no release has been deployed");
                return ExitCodes.Success;
            }

            var table = new PlainTable("RELEASE", "REVISION", "READY", "DEPLOYED", "BY", "MEDIAWIKI IMAGE");
            foreach (var (record, ready) in rows)
            {
                table.Add(record.Id.ToString(), record.Revision.ToString(CultureInfo.InvariantCulture), ready, record.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), record.Actor,
                    record.Images.Where(kv => kv.Key.EndsWith("-app", StringComparison.Ordinal)).Select(kv => kv.Value).FirstOrDefault() ?? "-");
            }

            writer.Write(table.ToString());
            writer.WriteLine(versions.Count <= 1
                ? $"MediaWiki: every release runs {versions.FirstOrDefault()?.Key ?? "nothing yet"}"
                : "MediaWiki: releases run different versions:\n" + string.Join("\n", versions.Select(g => $"  {g.Key}: {string.Join(", ", g.Select(x => x.Record.Id.ToString()))}")));
            return ExitCodes.Success;
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
        var command = new Command("history", "The deployed revisions of releases: who, when, why, in which plan") { repo, dc, ns, release, output };
        command.SetAction(async (parse, ct) =>
        {
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), null, null, new RenderSelection(parse.GetValue(dc), parse.GetValue(ns)), ct);
            var all = new List<ReleaseRecord>();
            foreach (var datacenter in session.Clusters.Datacenters.Order(StringComparer.Ordinal))
            {
                var records = await ReleaseRecords.ListAsync(session.Clusters[datacenter], datacenter, parse.GetValue(ns), ct);
                all.AddRange(records.Values.SelectMany(r => r).Where(r => parse.GetValue(release) is not { } name || r.Id.Release == name));
            }

            var sorted = all.OrderBy(r => r.Id.ToString(), StringComparer.Ordinal).ThenBy(r => r.Revision).ToList();
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonArray([.. sorted.Select(r => (JsonNode)new JsonObject
                {
                    ["release"] = r.Id.ToString(),
                    ["revision"] = r.Revision,
                    ["status"] = r.Status,
                    ["at"] = r.At.ToString("O", CultureInfo.InvariantCulture),
                    ["actor"] = r.Actor,
                    ["reason"] = r.Reason,
                    ["plan"] = r.PlanId,
                    ["manifestHash"] = r.ManifestHash,
                })])));
                return ExitCodes.Success;
            }

            var table = new PlainTable("RELEASE", "REVISION", "STATUS", "AT", "BY", "PLAN", "REASON");
            foreach (var r in sorted)
            {
                table.Add(r.Id.ToString(), r.Revision.ToString(CultureInfo.InvariantCulture), r.Status, r.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), r.Actor, r.PlanId, r.Reason);
            }

            writer.Write(table.ToString());
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildRollback()
    {
        var repo = CommonOptions.Repo();
        var target = new Argument<string>("release") { Description = "The release: DC/NAMESPACE/RELEASE" };
        var to = new Option<int?>("--to") { Description = "The revision to go back to (default: the one before the current)", HelpName = "REV" };
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var state = CommonOptions.State();
        var yes = new Option<bool>("--yes", "-y") { Description = "Roll back without asking" };
        var command = new Command("rollback", "Re-apply a stored revision of a release (recorded as a new revision)") { target, to, repo, reason, actor, state, yes };
        command.SetAction(async (parse, ct) =>
        {
            var id = ReleaseId.Parse(parse.GetValue(target)!) ?? throw new UserInputException($"'{parse.GetValue(target)}' is not DC/NAMESPACE/RELEASE");
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(id.Datacenter, id.Namespace, id.Release), ct);
            var client = session.Clusters[id.Datacenter];
            var history = (await ReleaseRecords.ListAsync(client, id.Datacenter, id.Namespace, ct)).GetValueOrDefault(id)
                ?? throw new UserInputException($"{id} has never been deployed");
            var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history[0];
            var wanted = parse.GetValue(to);
            var targetRecord = wanted is { } rev
                ? history.FirstOrDefault(r => r.Revision == rev) ?? throw new UserInputException($"{id} has no revision {rev} (revisions: {string.Join(", ", history.Select(r => r.Revision).Order())})")
                : history.Where(r => r.Revision < current.Revision && r.ManifestHash != current.ManifestHash).MaxBy(r => r.Revision)
                  ?? throw new UserInputException($"{id} has no earlier revision to roll back to");
            if (!parse.GetValue(yes) && !env.Interactive)
            {
                throw new UserInputException("stdin is not a terminal, so nobody can confirm: pass --yes to roll back");
            }

            if (!parse.GetValue(yes))
            {
                console.Profile.Out.Writer.Write($"Roll {id} back from revision {current.Revision} to revision {targetRecord.Revision}? [y/N] ");
                if ((await env.Input.ReadLineAsync(ct))?.Trim() is not ("y" or "Y" or "yes"))
                {
                    error.WriteLine("capstan: not confirmed; nothing was applied");
                    return ExitCodes.UserError;
                }
            }

            var keep = targetRecord.Manifest.Select(o => LiveRelease.Key(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>())).ToHashSet(StringComparer.Ordinal);
            var spec = session.Repo.Model.FindRelease(new Core.Config.ReleaseRef(id.Namespace, id.Release));
            var action = new ReleaseAction(
                id,
                spec?.Kind ?? Core.Config.ReleaseKind.Manifests,
                spec?.Stage ?? Core.Config.Stage.Production,
                ReleaseChange.Upgrade,
                targetRecord.Manifest,
                [.. targetRecord.Manifest.Select(o => new ObjectChange(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>(), "rollback", o, null))],
                [.. current.Manifest.Where(o => !keep.Contains(LiveRelease.Key(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>())))
                    .Select(o => new ObjectPrune(o["apiVersion"]!.GetValue<string>(), o["kind"]!.GetValue<string>(), o["metadata"]?["namespace"]?.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>()))],
                [],
                targetRecord.ManifestHash,
                history.Max(r => r.Revision));
            var plan = new Plan(Planner.NewPlanId(), [action], [], 1);
            var options = new ExecutorOptions
            {
                Actor = session.Repo.Actor(parse.GetValue(actor)),
                Reason = $"rollback to revision {targetRecord.Revision}" + (parse.GetValue(reason) is { } r ? $": {r}" : string.Empty),
                ForceConflicts = true,
            };
            DeployResult result;
            try
            {
                result = await session.Service().RunAsync(plan, options, new LineObserver(console.Profile.Out.Writer), ct);
            }
            catch (DeployLockedException ex)
            {
                error.WriteLine($"capstan: error: {ex.Message}");
                return ExitCodes.Locked;
            }

            console.Profile.Out.Writer.Write(PlanView.Summary(result));
            return result.Succeeded ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    private Command BuildLock()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var command = new Command("lock", "Stop every deploy of the farm until 'capstan unlock'") { repo, state, reason, actor };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var why = parse.GetValue(reason);
            if (string.IsNullOrWhiteSpace(why))
            {
                throw new UserInputException("--reason is required: the lock tells every deployer why");
            }

            var (store, _) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                try
                {
                    await DeployLock.LockAsync(store, session.Model.Project, session.Actor(parse.GetValue(actor)), why, ct);
                }
                catch (DeployLockedException ex)
                {
                    error.WriteLine($"capstan: error: {ex.Message}");
                    return ExitCodes.Locked;
                }
            }

            console.Profile.Out.Writer.WriteLine($"deploys of {session.Model.Project} are locked: {why}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildUnlock()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var command = new Command("unlock", "Remove the deploy lock, whoever holds it") { repo, state, reason };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            if (string.IsNullOrWhiteSpace(parse.GetValue(reason)))
            {
                throw new UserInputException("--reason is required to remove a lock");
            }

            var (store, _) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var removed = await DeployLock.UnlockAsync(store, session.Model.Project, ct);
                console.Profile.Out.Writer.WriteLine(removed is null ? "deploys were not locked" : $"removed the lock of {removed}");
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
