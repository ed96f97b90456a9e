using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.Deploy.Actions;
using Capstan.Deploy.Gates;
using Capstan.Deploy.Json;
using Capstan.State;
using Microsoft.Extensions.Logging;

namespace Capstan.Web;

/// <summary>What a job is asked to do, from a form or a JSON body: the kind, its target and why.</summary>
internal sealed record JobRequest(string Kind, string? Datacenter, string? Namespace, string? Release, string? Target, string? Plan, string Reason)
{
    /// <summary>The kinds of job, in the order the page offers them.</summary>
    public static readonly string[] Kinds = ["deploy", "rollback", "cancel", "lock", "unlock"];

    /// <summary>The role a kind needs: locking the farm is an admin's, the rest a deployer's.</summary>
    public Role Needs => Kind is "lock" or "unlock" ? Role.Admin : Role.Deployer;

    public static JobRequest Parse(Fields fields)
    {
        var kind = fields.One("kind") ?? throw new UserInputException("say which job: kind is deploy, rollback, cancel, lock or unlock");
        if (!Kinds.Contains(kind, StringComparer.Ordinal))
        {
            throw new UserInputException($"'{kind}' is not a job: use deploy, rollback, cancel, lock or unlock");
        }

        var reason = fields.One("reason") ?? throw new UserInputException("a reason is required: every change from the dashboard records why");
        FreeText.Check("the reason", reason);
        return new JobRequest(kind, fields.One("dc"), fields.One("ns"), fields.One("release"), fields.One("target"), fields.One("plan"), reason);
    }

    /// <summary>What the job acts on, for people.</summary>
    public string What => Kind switch
    {
        "deploy" => "deploy " + (Datacenter is null && Namespace is null && Release is null ? "everything" : string.Join("/", new[] { Datacenter ?? "every datacenter", Namespace, Release }.Where(p => p is not null))),
        "rollback" => "roll back " + (Target ?? (Plan is null ? "the last deploy" : "plan " + Plan)),
        "cancel" => "cancel the running deploy",
        "lock" => "lock deploys",
        _ => "unlock deploys",
    };

    /// <summary>The request's fields, to carry through the confirmation form (and in a JSON body).</summary>
    public IEnumerable<(string Key, string Value)> Fields() =>
        new (string Key, string? Value)[] { ("kind", Kind), ("dc", Datacenter), ("ns", Namespace), ("release", Release), ("target", Target), ("plan", Plan), ("reason", Reason) }
            .Where(f => f.Value is not null).Select(f => (f.Key, f.Value!));
}

/// <summary>
/// The dashboard's actions as jobs. Each is first shown (a deploy's plan and pull cost as <c>deploy --dry-run</c>
/// shows them, a rollback's revisions, the deploy a cancel stops) with a digest of what was shown; it then runs only
/// when confirmed with that digest, through the same actions as the CLI, as the signed-in user.
/// </summary>
internal sealed class JobActions(DashboardData data, JobBoard board, TimeProvider time, ILogger log)
{
    /// <summary>What the job would do, and the digest its confirmation must carry.</summary>
    public async Task<JsonObject> PreviewAsync(JobRequest request, string actor, CancellationToken cancellationToken)
    {
        var preview = new JsonObject { ["kind"] = request.Kind, ["what"] = request.What, ["reason"] = request.Reason, ["actor"] = actor };
        switch (request.Kind)
        {
            case "deploy":
            {
                var (action, _) = await DeployActionAsync(cancellationToken);
                var proposal = await action.PrepareAsync(Intent(request, actor, dryRun: true), cancellationToken);
                preview["plan"] = PlanJson.Of(proposal.Plan);
                preview["changing"] = proposal.Changing;
                preview["gates"] = new JsonArray([.. proposal.GateLines.Select(l => (JsonNode)l)]);
                preview["notes"] = new JsonArray([.. proposal.Notes.Select(n => (JsonNode)n)]);
                preview["held"] = new JsonArray([.. proposal.Held.Select(h => (JsonNode)h.Release.ToString())]);
                preview["pullCost"] = proposal.PullCost is { } cost ? PlanJson.PullCost(cost) : null;
                preview["digest"] = proposal.Changing == 0 ? null : Digest(proposal.Plan);
                break;
            }

            case "rollback":
            {
                var (targets, skipped) = await RollbackTargetsAsync(request, cancellationToken);
                preview["rollbacks"] = new JsonArray([.. targets.Select(t => (JsonNode)new JsonObject
                {
                    ["release"] = t.Release.ToString(),
                    ["from"] = t.Current.Revision,
                    ["to"] = t.Target.Revision,
                    ["images"] = new JsonArray([.. t.Target.Images.Where(i => t.Current.Images.GetValueOrDefault(i.Key) != i.Value)
                        .Select(i => (JsonNode)new JsonObject { ["container"] = i.Key, ["from"] = t.Current.Images.GetValueOrDefault(i.Key), ["to"] = i.Value })]),
                })]);
                preview["notes"] = new JsonArray([.. skipped.Select(s => (JsonNode)s)]);
                preview["digest"] = targets.Count == 0 ? null : Digest(targets);
                break;
            }

            case "cancel":
                var running = await DeployProgress.RunningAsync(data.Store, data.Model.Project, cancellationToken)
                    ?? throw new UserInputException("no deploy is running: there is nothing to cancel");
                preview["running"] = running;
                preview["digest"] = running["planId"]?.GetValue<string>();
                break;

            default:
                preview["lock"] = await DeployLock.HolderAsync(data.Store, data.Model.Project, cancellationToken) is { } holder ? holder.ToString() : null;
                preview["digest"] = request.Kind;
                break;
        }

        return preview;
    }

    /// <summary>
    /// Starts the job when what it would do is still what was shown (the <paramref name="digest"/>); a plan that changed
    /// in between is refused, to be shown again.
    /// </summary>
    public async Task<DashboardJob> StartAsync(JobRequest request, string digest, string actor, CancellationToken stopping)
    {
        const string changed = "what this would do changed since it was shown (the repo, the clusters or the running deploy moved): review it again; nothing was changed";
        switch (request.Kind)
        {
            case "deploy":
            {
                var (action, _) = await DeployActionAsync(stopping);
                var proposal = await action.PrepareAsync(Intent(request, actor, dryRun: false), stopping);
                if (proposal.Changing == 0 || Digest(proposal.Plan) != digest)
                {
                    throw new UserInputException(changed);
                }

                return board.Start(request.Kind, request.What, actor, request.Reason, async (job, ct) =>
                {
                    job.Log($"plan {proposal.Plan.Id}: {proposal.Changing} releases change");
                    var outcome = await action.RunAsync(proposal, job, ct);
                    return Ended(job, outcome.Result);
                }, stopping, proposal.Plan.Id);
            }

            case "rollback":
            {
                var (targets, _) = await RollbackTargetsAsync(request, stopping);
                if (targets.Count == 0 || Digest(targets) != digest)
                {
                    throw new UserInputException(changed);
                }

                return board.Start(request.Kind, request.What, actor, request.Reason, async (job, ct) =>
                {
                    var rollbacks = Rollbacks();
                    foreach (var target in targets)
                    {
                        var result = await rollbacks.RunAsync(target, actor, request.Reason, job, ct);
                        job.PlanId = result.PlanId;
                        var end = Ended(job, result);
                        if (!result.Succeeded)
                        {
                            // The rest of a plan's rollback waits: the farm is between revisions.
                            return end;
                        }

                        job.Log($"{target.Release} is held at revision {target.Current.Revision}'s image: a deploy that would apply it again stops");
                    }

                    return ("succeeded", $"rolled back {string.Join(", ", targets.Select(t => $"{t.Release} to revision {t.Target.Revision}"))}; each is held at the revision it left");
                }, stopping);
            }

            case "cancel":
                // The deploy running now; or the one a job of this server has just started, before it wrote its journal.
                var running = (await DeployProgress.RunningAsync(data.Store, data.Model.Project, stopping))?["planId"]?.GetValue<string>();
                var starting = running is null && request.Plan is { } plan && board.Runs(plan) ? plan : null;
                if ((running ?? starting) != digest)
                {
                    throw new UserInputException(changed);
                }

                var cancel = await DeployCancel.RequestAsync(data.Store, data.Model.Project, actor, request.Reason, time, stopping, starting);
                return board.Start(request.Kind, request.What, actor, request.Reason, (job, _) =>
                {
                    job.PlanId = cancel.PlanId;
                    return Task.FromResult(("succeeded", $"asked plan {cancel.PlanId} to stop: no release starts now, the ones rolling out finish; run the same deploy again to continue"));
                }, stopping);

            case "lock":
                await DeployLock.LockAsync(data.Store, data.Model.Project, actor, request.Reason, stopping, time: time);
                return board.Start(request.Kind, request.What, actor, request.Reason, (_, _) => Task.FromResult(("succeeded", $"deploys of {data.Model.Project} are locked: {request.Reason}")), stopping);

            default:
                var removed = await DeployLock.UnlockAsync(data.Store, data.Model.Project, stopping);
                return board.Start(request.Kind, request.What, actor, request.Reason, (_, _) => Task.FromResult(("succeeded", removed?.Holder is { } holder ? $"removed the lock of {holder}" : "deploys were not locked")), stopping);
        }
    }

    /// <summary>The job's end from a deploy's result: each release's result in the log, then the verdict and cause.</summary>
    private static (string State, string Outcome) Ended(DashboardJob job, DeployResult result)
    {
        foreach (var release in result.Releases.Where(r => r.State != ReleaseState.Unchanged))
        {
            job.Log($"{release.Id}: {PlanJson.Word(release.State)}{(release.Detail is { Length: > 0 } detail ? " — " + detail : string.Empty)}");
        }

        var state = result.Succeeded ? "succeeded" : result.Cancelled is not null && !result.Releases.Any(r => r.State == ReleaseState.Failed) ? "cancelled" : "failed";
        return (state, PlanJson.Verdict(result) + (result.Cause is { } cause ? "; " + cause : string.Empty));
    }

    private static DeployIntent Intent(JobRequest request, string actor, bool dryRun) =>
        new(new RenderSelection(request.Datacenter, request.Namespace, request.Release), actor) { Reason = request.Reason, DryRun = dryRun };

    /// <summary>The deploy action on the repo as it is now (read again for every job), its state and the dashboard's clusters.</summary>
    private async Task<(DeployAction Action, FarmModel Model)> DeployActionAsync(CancellationToken cancellationToken)
    {
        var model = RepoLoader.Load(data.Files).Model;
        var state = await new DynamicStateService(data.Store, model.Project, [.. model.DatacenterNames], time).ReadRequiredAsync(cancellationToken);
        return (new DeployAction(new DeployContext(model, new FarmRenderer(model, data.Files), data.Clusters, data.Store, state, time)
        {
            Gates = GateClients.For(model),
            Logger = log,
        }), model);
    }

    private Rollbacks Rollbacks()
    {
        var model = RepoLoader.Load(data.Files).Model;
        var service = new DeployService(model, new FarmRenderer(model, data.Files), data.Clusters, data.Store, time, log);
        return new Rollbacks(model, data.Clusters, data.Store, service, time);
    }

    private async Task<(IReadOnlyList<RollbackTarget> Targets, IReadOnlyList<string> Skipped)> RollbackTargetsAsync(JobRequest request, CancellationToken cancellationToken)
    {
        var rollbacks = Rollbacks();
        var skipped = new List<string>();
        if (request.Target is { } target)
        {
            var id = ReleaseId.Parse(target) ?? throw new UserInputException($"'{target}' is not DC/NAMESPACE/RELEASE");
            if (!data.Model.DatacenterNames.Contains(id.Datacenter) || data.Model.FindRelease(new ReleaseRef(id.Namespace, id.Release)) is null)
            {
                throw new UserInputException($"the farm has no release {id}");
            }

            return ([await rollbacks.TargetAsync(id, null, cancellationToken)], skipped);
        }

        var (_, targets) = await rollbacks.PlanAsync(request.Plan, skipped, cancellationToken);
        return (targets, skipped);
    }

    /// <summary>What a plan does, in a few hex digits: each release's change and manifest, and the namespaces it creates.</summary>
    private static string Digest(Plan plan) =>
        Hash(string.Join("\n", plan.Actions.Where(a => a.Change != ReleaseChange.NoOp).Select(a => $"{a.Id} {a.Change} {a.ManifestHash}").Order(StringComparer.Ordinal)) +
             "\n" + string.Join("\n", plan.Namespaces.Select(n => $"{n.Datacenter}/{n.Namespace}")));

    private static string Digest(IReadOnlyList<RollbackTarget> targets) =>
        Hash(string.Join("\n", targets.Select(t => $"{t.Release} {t.Current.Revision} {t.Target.Revision}")));

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();
}
