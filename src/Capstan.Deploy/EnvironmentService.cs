using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>What a new environment is to be: who owns it and why, for how long, and what it runs where.</summary>
public sealed record EnvironmentRequest(
    string Name,
    string? Owner,
    string Purpose,
    string Description,
    IReadOnlyList<string> Links,
    TimeSpan Lifetime,
    bool Pin,
    string? Image,
    string Datacenter,
    IReadOnlyList<string> Groups,
    IReadOnlyList<string> ValuesFiles,
    string Actor);

/// <summary>
/// Test environments of a farm: each one a record in the state store and the chosen server groups, rendered from
/// production's values with the environment's overlay, deployed into <c>NAME--namespace</c> on the datacenter's
/// cluster. A create that fails removes what it made.
/// </summary>
public sealed class EnvironmentService(FarmModel model, IRepoFiles files, IClusters clusters, IStateStore store, TimeProvider time)
{
    /// <summary>The annotations every namespace of an environment carries (kube-janitor's included).</summary>
    public const string OwnerAnnotation = "capstan.dev/owner";

    /// <summary>The purpose classes.</summary>
    public EnvironmentPolicy Policy { get; } = EnvironmentPolicy.Default;

    /// <summary>The records.</summary>
    public EnvironmentStore Records { get; } = new(store, model.Project, time);

    /// <summary>The groups an environment runs unless told: the web and API groups (debug aside), with their support releases.</summary>
    public static IReadOnlyList<string> DefaultGroups(FarmModel model) =>
        [.. model.Groups.Where(g => g.Traits.Serving == ServingKind.Web && !g.Namespace.Contains("debug", StringComparison.Ordinal)).Select(g => g.Namespace)];

    /// <summary>The overlay of an environment: its values file (<c>environments/NAME.yaml</c>) and any given, its own secrets file.</summary>
    public EnvironmentOverlay Overlay(EnvironmentRecord record, IReadOnlyList<string> valuesFiles)
    {
        var values = new List<string>();
        if (files.FileExists($"environments/{record.Name}.yaml"))
        {
            values.Add($"environments/{record.Name}.yaml");
        }

        values.AddRange(valuesFiles);
        var secrets = files.FileExists($"environments/{record.Name}.secrets.yaml") ? new[] { $"environments/{record.Name}.secrets.yaml" } : [];
        return new EnvironmentOverlay(record.Name, values, secrets, Image: record.Image);
    }

    /// <summary>
    /// Creates an environment: checks everything first (ownership, class, name, groups, datacenter, the overlay's
    /// values by rendering), writes the record (a name taken by another create is refused, naming the owner), then
    /// deploys; a failed deploy removes the environment again and says why.
    /// </summary>
    public async Task<(EnvironmentRecord Record, IReadOnlyList<DeployResult> Results)> CreateAsync(EnvironmentRequest request, DynamicState productionState, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var @base = request.Pin ? EnvironmentBase.Pinned : EnvironmentBase.Follow;
        Policy.Check(request.Owner, request.Purpose, now + request.Lifetime, now, @base, request.Links);
        if (!model.DatacenterNames.Contains(request.Datacenter))
        {
            throw new UserInputException($"unknown datacenter '{request.Datacenter}' (allowed: {string.Join(", ", model.DatacenterNames)})");
        }

        var groups = request.Groups.Count > 0 ? request.Groups : DefaultGroups(model);
        if (groups.FirstOrDefault(g => model.FindGroup(g) is null) is { } unknown)
        {
            throw new UserInputException($"unknown group '{unknown}' (allowed: {string.Join(", ", model.Groups.Select(g => g.Namespace))})");
        }

        EnvironmentNames.Check(request.Name, groups);
        if (groups.Select(g => EnvironmentNames.Namespace(request.Name, g)).FirstOrDefault(ns => model.FindGroup(ns) is not null) is { } taken)
        {
            throw new UserInputException($"environment name '{request.Name}' would put a group into {taken}, which is a production namespace; choose another name");
        }

        var record = new EnvironmentRecord(
            request.Name, request.Owner!, request.Purpose, request.Description, request.Links, request.Actor, now, now + request.Lifetime,
            @base, request.Pin ? "repo as of " + now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture) : null,
            request.Image, [request.Datacenter], [.. groups])
        {
            ValuesFiles = request.ValuesFiles,
        };

        // Everything is rendered before anything is written: a broken overlay changes nothing.
        var (service, renderer) = Deployer(record, request.ValuesFiles);
        foreach (var group in groups)
        {
            renderer.Render(new RenderSelection(request.Datacenter, group), productionState);
        }

        // A namespace of that name that is not this environment's (left over, or someone else's) is never taken over.
        foreach (var ns in groups.Select(g => EnvironmentNames.Namespace(record.Name, g)))
        {
            if (await clusters[request.Datacenter].GetAsync(new ObjectRef("v1", "Namespace", null, ns), cancellationToken) is { } existing
                && existing["metadata"]?["labels"]?[EnvironmentOverlay.Label]?.GetValue<string>() != record.Name)
            {
                throw new UserInputException($"namespace {ns} already exists in {request.Datacenter} and is not environment {record.Name}'s; choose another name");
            }
        }

        await Records.CreateAsync(record, cancellationToken);
        IReadOnlyList<DeployResult> results;
        try
        {
            // The namespaces first, labelled as the environment's (under a field manager of their own, so deploys keep
            // the label): whatever happens next, they are known to be this environment's and are removed with it.
            foreach (var ns in groups.Select(g => EnvironmentNames.Namespace(record.Name, g)))
            {
                await clusters[request.Datacenter].ApplyAsync(
                    new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns, ["labels"] = new JsonObject { [EnvironmentOverlay.Label] = record.Name } } },
                    "capstan-environment",
                    cancellationToken);
            }

            results = await DeployAsync(service, record, productionState, request.Actor, "create", observer, cancellationToken);
            await AnnotateAsync(record, cancellationToken);
        }
        catch (Exception failure) when (failure is not (OutOfMemoryException or StackOverflowException))
        {
            // Nothing is left half-made: the namespaces and the record go again, whatever stopped the create.
            try
            {
                await RemoveAsync(record, CancellationToken.None);
                await Records.ChangeAsync(record.Name, request.Actor, "delete (the create failed)", force: true, _ => null, CancellationToken.None);
            }
            catch (Exception cleanup) when (cleanup is KubeApiException or KubeUnavailableException or KubeCredentialException or StateStoreException or DeployFailedException)
            {
                throw new DeployFailedException(
                    $"{failure.Message}; removing the half-made environment failed too ({cleanup.Message}): run 'capstan env delete {record.Name} --force' when the cluster answers");
            }

            throw;
        }

        return (record, results);
    }

    /// <summary>
    /// Refreshes environments (one, or all when <paramref name="name"/> is null): a followed one is rendered against the
    /// repo as it is now and deployed; a pinned one is only compared, and reported behind when the repo would change
    /// it; a sleeping one is left alone. One line per environment says what happened.
    /// </summary>
    public async Task<IReadOnlyList<string>> RefreshAsync(string? name, DynamicState productionState, string actor, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var records = name is null
            ? await Records.ListAsync(cancellationToken)
            : [(await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'")).Record];
        var report = new List<string>();
        foreach (var record in records)
        {
            if (record.Sleeping is not null)
            {
                report.Add($"{record.Name}: asleep, not refreshed");
                continue;
            }

            var (service, _) = Deployer(record, record.ValuesFiles);
            if (record.Base == EnvironmentBase.Pinned)
            {
                var behind = 0;
                foreach (var group in record.Groups)
                {
                    var plan = await service.PrepareAsync(Request(record, group, actor, "refresh"), productionState, cancellationToken);
                    behind += plan.Plan.Actions.Count(a => a.Change != Core.Planning.ReleaseChange.NoOp);
                }

                report.Add(behind == 0
                    ? $"{record.Name}: pinned ({record.PinnedRevision}); the repo would change nothing"
                    : $"{record.Name}: pinned ({record.PinnedRevision}); behind: the repo now would change {behind} release{(behind == 1 ? string.Empty : "s")}, not refreshed");
                continue;
            }

            var results = await DeployAsync(service, record, productionState, actor, "refresh", observer, cancellationToken);
            var changed = results.Sum(r => r.Releases.Count(o => o.State != ReleaseState.Unchanged));
            report.Add($"{record.Name}: refreshed, {changed} release{(changed == 1 ? string.Empty : "s")} changed");
        }

        return report;
    }

    /// <summary>
    /// How an environment differs from production: per release, every values key whose value differs, with the file
    /// and line that set it on each side; the image; and the releases only production runs.
    /// </summary>
    public async Task<EnvironmentDrift> DriftAsync(string name, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        var production = new FarmRenderer(model, files);
        var (_, renderer) = Deployer(record, record.ValuesFiles);
        var values = new List<ReleaseValueDifference>();
        var onlyInProduction = new List<string>();
        var dc = record.Datacenters[0];
        foreach (var group in record.Groups.Select(g => model.FindGroup(g)!))
        {
            foreach (var release in group.Releases.Where(r => r.RunsIn(dc)))
            {
                if (release.Canary is not null)
                {
                    onlyInProduction.Add($"{group.Namespace}/{release.Name} (canaries are off in environments)");
                    continue;
                }

                foreach (var difference in ValuesDrift.Compare(renderer.ResolveTree(dc, group, release), production.ResolveTree(dc, group, release, withSecrets: false)))
                {
                    values.Add(new ReleaseValueDifference($"{group.Namespace}/{release.Name}", difference));
                }
            }
        }

        if (record.Image is { } image)
        {
            values.Add(new ReleaseValueDifference("(all)", new ValueDifference("image", image, null, "(the images values file)", null)));
        }

        return new EnvironmentDrift(record.Name, values, onlyInProduction);
    }

    private static DeployRequest Request(EnvironmentRecord record, string group, string actor, string what) =>
        new(new RenderSelection(record.Datacenters[0], group), false, false, Core.Planning.Planner.DefaultConcurrency,
            new ExecutorOptions { Actor = actor, Reason = $"environment {record.Name}: {what}", NoRollback = true });

    /// <summary>Deploys every group of an environment, one after the other; a group that fails stops it.</summary>
    private static async Task<IReadOnlyList<DeployResult>> DeployAsync(
        DeployService service, EnvironmentRecord record, DynamicState state, string actor, string what, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var results = new List<DeployResult>();
        foreach (var group in record.Groups)
        {
            var request = Request(record, group, actor, what);
            var prepared = await service.PrepareAsync(request, state, cancellationToken);
            if (prepared.Plan.IsNoOp)
            {
                continue;
            }

            var result = await service.RunAsync(prepared.Plan, request.Executor, observer, cancellationToken);
            results.Add(result);
            if (!result.Succeeded)
            {
                throw new DeployFailedException($"environment {record.Name}: {group} did not deploy: {result.Cause}");
            }
        }

        return results;
    }

    /// <summary>
    /// Deletes an environment: its namespaces (waited for until they are gone), then its record. Someone else's needs
    /// <paramref name="force"/>, recorded with the actor.
    /// </summary>
    public async Task DeleteAsync(string name, string actor, bool force, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        if (record.Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {record.Owner}; to delete it as {actor}, add --force (recorded)");
        }

        // Under the environment's deploy lock: no refresh can put namespaces back while they go.
        await using var exclusive = await DeployLock.AcquireAsync(store, ProjectOf(record.Name), actor, $"environment {name}: delete", cancellationToken);
        await RemoveAsync(record, cancellationToken);
        await Records.ChangeAsync(name, actor, "delete", force, _ => null, cancellationToken);
    }

    /// <summary>The project an environment deploys as: its own lock, journal and plan records.</summary>
    private string ProjectOf(string name) => $"{model.Project}--{name}";

    /// <summary>
    /// Moves an environment's expiry later by <paramref name="by"/> (from now, if it has passed), within its class's
    /// cap counted from now; the namespaces' annotations follow. Someone else's needs <paramref name="force"/>.
    /// </summary>
    public async Task<EnvironmentRecord> ExtendAsync(string name, TimeSpan by, string actor, bool force, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        var now = time.GetUtcNow();
        var expires = (record.Expires > now ? record.Expires : now) + by;
        Policy.Check(record.Owner, record.Purpose, expires, now, record.Base, record.Links);
        // A new expiry gets its warnings again.
        var extended = await Records.ChangeAsync(name, actor, $"extend to {expires.UtcDateTime:yyyy-MM-dd HH:mm} UTC", force, r => r with { Expires = expires, Warned = [] }, cancellationToken);
        await AnnotateAsync(extended!, cancellationToken);
        return extended!;
    }

    /// <summary>
    /// Puts an environment to sleep: every Deployment scaled to zero, the replicas it had kept in the record for
    /// <see cref="WakeAsync"/>. Someone else's needs <paramref name="force"/>.
    /// </summary>
    public async Task<EnvironmentRecord> SleepAsync(string name, string actor, bool force, CancellationToken cancellationToken)
    {
        var (record, revision) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        if (record.Sleeping is not null)
        {
            throw new UserInputException($"environment '{name}' is asleep already; 'capstan env wake {name}' wakes it");
        }

        if (record.Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {record.Owner}; to sleep it as {actor}, add --force (recorded)");
        }

        await using var exclusive = await DeployLock.AcquireAsync(store, ProjectOf(name), actor, $"environment {name}: sleep", cancellationToken);
        var replicas = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (dc, ns, deployment) in await DeploymentsAsync(record, cancellationToken))
        {
            replicas[$"{dc}/{ns}/{deployment["metadata"]!["name"]!.GetValue<string>()}"] = (int)(Core.Kubernetes.JsonNumbers.Long(deployment["spec"]?["replicas"]) ?? 1);
        }

        // The record first: a sleep that stops half-way still knows every count to restore.
        // Compared with the record read above: a concurrent sleep cannot replace the counts with zeros.
        var asleep = await Records.ChangeAsync(name, actor, "sleep", force, r => r with { Sleeping = replicas }, cancellationToken, expectedRevision: revision);
        foreach (var key in replicas.Keys)
        {
            await ScaleAsync(key, 0, cancellationToken);
        }

        return asleep!;
    }

    /// <summary>Wakes a sleeping environment: every Deployment back to its replicas, waited for until rolled out.</summary>
    public async Task<EnvironmentRecord> WakeAsync(string name, string actor, bool force, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        var sleeping = record.Sleeping ?? throw new UserInputException($"environment '{name}' is awake");
        if (record.Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {record.Owner}; to wake it as {actor}, add --force (recorded)");
        }

        await using var exclusive = await DeployLock.AcquireAsync(store, ProjectOf(name), actor, $"environment {name}: wake", cancellationToken);
        foreach (var group in sleeping.GroupBy(kv => kv.Key[..kv.Key.IndexOf('/', StringComparison.Ordinal)]))
        {
            await using var watcher = new Kubernetes.Watching.RolloutWatcher(clusters[group.Key], time);
            var scaled = new List<(string Ns, string Name, long Generation)>();
            foreach (var (key, count) in group)
            {
                var generation = await ScaleAsync(key, count, cancellationToken);
                var parts = key.Split('/');
                scaled.Add((parts[1], parts[2], generation));
            }

            foreach (var (ns, deployment, generation) in scaled)
            {
                if (await watcher.WaitForRolloutAsync(ns, deployment, generation, new Kubernetes.Watching.WaitLimits(), null, cancellationToken) is { } problem)
                {
                    throw new DeployFailedException($"environment {name} did not wake: {problem}");
                }
            }
        }

        return (await Records.ChangeAsync(name, actor, "wake", force, r => r with { Sleeping = null }, cancellationToken))!;
    }

    private async Task<List<(string Dc, string Ns, JsonObject Deployment)>> DeploymentsAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var found = new List<(string, string, JsonObject)>();
        foreach (var dc in record.Datacenters)
        {
            foreach (var group in record.Groups)
            {
                var ns = EnvironmentNames.Namespace(record.Name, group);
                foreach (var deployment in (await clusters[dc].ListAsync("apps/v1", "Deployment", ns, $"app.kubernetes.io/managed-by={ObjectLabels.ManagedBy}", cancellationToken)).Items)
                {
                    found.Add((dc, ns, deployment));
                }
            }
        }

        return found;
    }

    /// <summary>Sets a Deployment's replicas (<c>dc/namespace/name</c>) under the environment's own field manager; its new generation.</summary>
    private async Task<long> ScaleAsync(string key, int replicas, CancellationToken cancellationToken)
    {
        var parts = key.Split('/');
        var patched = await clusters[parts[0]].PatchAsync(
            new ObjectRef("apps/v1", "Deployment", parts[1], parts[2]),
            new JsonObject { ["spec"] = new JsonObject { ["replicas"] = replicas } },
            "capstan-environment",
            cancellationToken);
        return Core.Kubernetes.JsonNumbers.Long(patched["metadata"]?["generation"]) ?? 0;
    }

    /// <summary>How ready an environment is: ready replicas of its Deployments over the replicas they want.</summary>
    public async Task<(int Ready, int Desired)> HealthAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var (ready, desired) = (0, 0);
        foreach (var (_, _, deployment) in await DeploymentsAsync(record, cancellationToken))
        {
            desired += (int)(Core.Kubernetes.JsonNumbers.Long(deployment["spec"]?["replicas"]) ?? 1);
            ready += (int)(Core.Kubernetes.JsonNumbers.Long(deployment["status"]?["readyReplicas"]) ?? 0);
        }

        return (ready, desired);
    }

    /// <summary>The namespaces of an environment in a datacenter, as they are in the cluster (absent ones left out).</summary>
    public async Task<IReadOnlyList<JsonObject>> NamespacesAsync(EnvironmentRecord record, string dc, CancellationToken cancellationToken)
    {
        var found = new List<JsonObject>();
        foreach (var group in record.Groups)
        {
            if (await clusters[dc].GetAsync(new ObjectRef("v1", "Namespace", null, EnvironmentNames.Namespace(record.Name, group)), cancellationToken) is { } ns)
            {
                found.Add(ns);
            }
        }

        return found;
    }

    private (DeployService Service, FarmRenderer Renderer) Deployer(EnvironmentRecord record, IReadOnlyList<string> valuesFiles)
    {
        // The environment deploys as a project of its own: its own lock, journal and plan records.
        var environmentModel = model with { Project = ProjectOf(record.Name) };
        var renderer = new FarmRenderer(environmentModel, files, Overlay(record, valuesFiles));
        return (new DeployService(environmentModel, renderer, clusters, store, time), renderer);
    }

    /// <summary>The record on every namespace: owner, purpose, expiry (kube-janitor's <c>janitor/expires</c> too).</summary>
    private async Task AnnotateAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var expires = record.Expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var dc in record.Datacenters)
        {
            foreach (var group in record.Groups)
            {
                await clusters[dc].PatchAsync(
                    new ObjectRef("v1", "Namespace", null, EnvironmentNames.Namespace(record.Name, group)),
                    new JsonObject
                    {
                        ["metadata"] = new JsonObject
                        {
                            ["labels"] = new JsonObject { [EnvironmentOverlay.Label] = record.Name },
                            ["annotations"] = new JsonObject
                            {
                                [OwnerAnnotation] = record.Owner,
                                ["capstan.dev/purpose"] = record.Purpose,
                                ["capstan.dev/expires"] = expires,
                                ["janitor/expires"] = expires,
                            },
                        },
                    },
                    "capstan-environment",
                    cancellationToken);
            }
        }
    }

    /// <summary>Deletes the environment's namespaces and waits until they are gone (their objects go with them).</summary>
    private async Task RemoveAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        foreach (var dc in record.Datacenters)
        {
            var client = clusters[dc];
            foreach (var group in record.Groups)
            {
                // Only a namespace labelled as this environment's: never one that merely has the name.
                var reference = new ObjectRef("v1", "Namespace", null, EnvironmentNames.Namespace(record.Name, group));
                if ((await client.GetAsync(reference, cancellationToken))?["metadata"]?["labels"]?[EnvironmentOverlay.Label]?.GetValue<string>() == record.Name)
                {
                    await client.DeleteAsync(reference, Propagation.Background, cancellationToken);
                }
            }

            var deadline = time.GetUtcNow() + TimeSpan.FromMinutes(2);
            while ((await NamespacesAsync(record, dc, cancellationToken)).Any(n => n["metadata"]?["labels"]?[EnvironmentOverlay.Label]?.GetValue<string>() == record.Name))
            {
                if (time.GetUtcNow() > deadline)
                {
                    throw new DeployFailedException($"environment {record.Name}: namespaces in {dc} still terminating after 2 minutes");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
            }
        }
    }
}

/// <summary>A values difference of one release of an environment.</summary>
public sealed record ReleaseValueDifference(string Release, ValueDifference Difference);

/// <summary>How an environment differs from production.</summary>
public sealed record EnvironmentDrift(string Environment, IReadOnlyList<ReleaseValueDifference> Values, IReadOnlyList<string> OnlyInProduction);
