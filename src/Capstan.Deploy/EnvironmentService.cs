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
    IReadOnlyList<string> Datacenters,
    IReadOnlyList<string> Groups,
    IReadOnlyList<string> ValuesFiles,
    string Actor)
{
    /// <summary><c>--set key=value</c> values, layered after the values files in this order.</summary>
    public IReadOnlyList<string> Settings { get; init; } = [];

    /// <summary>The developer's trees <see cref="EnvironmentRequest.Image"/> was built from (<c>VERSION=DIR</c>, <c>config=DIR</c>).</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];
}

/// <summary>
/// Test environments of a farm: each one a record in the state store and the chosen server groups, rendered from
/// production's values with the environment's overlay, deployed into <c>NAME--namespace</c> on the datacenters'
/// clusters, with a dynamic state of its own cloned from production's. A create that fails removes what it made; one
/// that was killed is resumed by the next create of the name, or removed by gc.
/// </summary>
public sealed partial class EnvironmentService(FarmModel model, IRepoFiles files, IClusters clusters, IStateStore store, TimeProvider time)
{
    /// <summary>The annotations every namespace of an environment carries (kube-janitor's included).</summary>
    public const string OwnerAnnotation = "capstan.dev/owner";

    /// <summary>How long a create on another host may run before its record counts as left by an interrupted create.</summary>
    public static readonly TimeSpan CreatePatience = TimeSpan.FromMinutes(30);

    private const string FieldManager = "capstan-environment";

    /// <summary>The purpose classes (capstan.yaml's <c>test-environments:</c>, else the defaults).</summary>
    public EnvironmentPolicy Policy => model.EnvironmentPolicy;

    /// <summary>The records.</summary>
    public EnvironmentStore Records { get; } = new(store, model.Project, time);

    /// <summary>The dynamic state of an environment (its own; cloned from production's at create).</summary>
    public DynamicStateService State(EnvironmentRecord record) => EnvironmentScope.State(model, record, store, time);

    /// <summary>
    /// Creates an environment: checks everything first (ownership, class, name, groups, datacenters, the overlay's
    /// values by rendering), writes the record (a name taken by another create is refused, naming the owner), clones
    /// production's dynamic state, then deploys; a failed deploy removes the environment again and says why. A record
    /// left by a create that was killed is resumed instead, when the same owner asks again.
    /// </summary>
    public async Task<(EnvironmentRecord Record, IReadOnlyList<DeployResult> Results)> CreateAsync(EnvironmentRequest request, DynamicState productionState, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var @base = request.Pin ? EnvironmentBase.Pinned : EnvironmentBase.Follow;
        FreeText.Check("the description", request.Description);
        FreeText.Check("the actor", request.Actor);
        var cls = Policy.Check(request.Owner, request.Purpose, now + request.Lifetime, now, @base, request.Links);
        if (await Records.GetAsync(request.Name, cancellationToken) is ({ Creating: { } creating } left, var leftRevision)
            && creating.Interrupted(now, CreatePatience) && left.Owner == request.Owner)
        {
            observer.OnEvent(new DeployEvent(now, null, null, $"environment {left.Name}: resuming the create {left.CreatedBy} started at {left.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, which was interrupted"));
            var resumed = await Records.ChangeAsync(left.Name, request.Actor, "resume the interrupted create", force: false, r => r with { Creating = CreateInProgress.Current(now) }, cancellationToken, expectedRevision: leftRevision);
            return await FinishCreateAsync(resumed!, Policy.Class(resumed!.Purpose), productionState, request.Actor, observer, resume: true, cancellationToken);
        }

        var groups = EnvironmentShape.Check(model, request.Name, request.Datacenters, request.Groups, request.ValuesFiles);
        var record = new EnvironmentRecord(
            request.Name, request.Owner!, request.Purpose, request.Description, request.Links, request.Actor, now, now + request.Lifetime,
            @base, request.Pin ? "repo as of " + now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture) : null,
            request.Image, [.. request.Datacenters], [.. groups])
        {
            ValuesFiles = request.ValuesFiles,
            Settings = request.Settings,
            Sources = request.Sources,
            Creating = CreateInProgress.Current(now),
        };

        // Everything is rendered and proven isolated before anything is written: a broken overlay or --set, or one that
        // reaches production, changes nothing.
        var state = EnvironmentScope.Clone(productionState, record.Datacenters);
        RenderIsolated(record, state);

        // A namespace of that name that is not this environment's (left over, or someone else's) is never taken over.
        foreach (var dc in record.Datacenters)
        {
            foreach (var ns in groups.Select(g => EnvironmentNames.Namespace(record.Name, g)))
            {
                if (await clusters[dc].GetAsync(new ObjectRef("v1", "Namespace", null, ns), cancellationToken) is { } existing
                    && existing["metadata"]?["labels"]?[EnvironmentOverlay.Label]?.GetValue<string>() != record.Name)
                {
                    throw new UserInputException($"namespace {ns} already exists in {dc} and is not environment {record.Name}'s; choose another name");
                }
            }
        }

        await Records.CreateAsync(record, cancellationToken);
        try
        {
            // Keys an earlier environment of this name may have left go first; then its own state, cloned from production's.
            await PurgeKeysAsync(record.Name, cancellationToken);
            await State(record).ChangeAsync(new StateChange.Initialize(state), request.Actor, $"environment {record.Name}: cloned from production's state", force: true, cancellationToken);
        }
        catch (Exception failure) when (failure is not (OutOfMemoryException or StackOverflowException))
        {
            await Records.ChangeAsync(record.Name, request.Actor, "delete (the create failed)", force: true, _ => null, CancellationToken.None);
            throw;
        }

        var created = await FinishCreateAsync(record, cls, productionState, request.Actor, observer, resume: false, cancellationToken);
        await AnnounceAsync("env.create", created.Record, request.Actor, cancellationToken);
        return created;
    }

    /// <summary>
    /// Renders the environment in each of its datacenters and refuses it, naming every place, when it carries any of
    /// production's endpoints or secrets, or when an own backend has no manifests.
    /// </summary>
    private void RenderIsolated(EnvironmentRecord record, DynamicState state)
    {
        if (EnvironmentScope.Backends(model, record) is { } backends)
        {
            foreach (var own in backends.Items.Where(i => i.Deployed))
            {
                var dir = $"{backends.Catalog.OwnDirectory}/{own.Production.Name}";
                if (files.ListFiles(dir, "*.yaml").Count + files.ListFiles(dir, "*.yml").Count == 0)
                {
                    throw new UserInputException(
                        $"environment {record.Name} gets backend {own.Production.Name} of its own, but {dir}/ has no manifests to deploy it from: add them, or give the {record.Purpose} class another source for it (shared:SET)");
                }
            }
        }

        var renderer = EnvironmentScope.Renderer(model, files, record);
        foreach (var dc in record.Datacenters)
        {
            EnvironmentIsolation.Check(model, files, record, renderer, renderer.Render(new RenderSelection(dc), state));
        }
    }

    /// <summary>
    /// The part of a create that touches the clusters: the namespaces (labelled, with the class's quota and container
    /// defaults), one deploy of every group in every datacenter, the annotations, then the record marked done. Any
    /// failure removes the environment; a kill leaves the record marked as being created, for a resume or gc.
    /// </summary>
    private async Task<(EnvironmentRecord Record, IReadOnlyList<DeployResult> Results)> FinishCreateAsync(
        EnvironmentRecord record, PurposeClass cls, DynamicState productionState, string actor, IDeployObserver observer, bool resume, CancellationToken cancellationToken)
    {
        IReadOnlyList<DeployResult> results;
        try
        {
            if (resume && await State(record).ReadAsync(cancellationToken) is { State: null })
            {
                await State(record).ChangeAsync(new StateChange.Initialize(EnvironmentScope.Clone(productionState, record.Datacenters)), actor, $"environment {record.Name}: cloned from production's state", force: true, cancellationToken);
            }

            // The namespaces first, labelled as the environment's (under a field manager of their own, so deploys keep
            // the label): whatever happens next, they are known to be this environment's and are removed with it.
            foreach (var dc in record.Datacenters)
            {
                foreach (var ns in EnvironmentScope.Namespaces(model, record).Select(g => EnvironmentNames.Namespace(record.Name, g)))
                {
                    await PrepareNamespaceAsync(clusters[dc], record, ns, cls, cancellationToken);
                }
            }

            results = await DeployAsync(record, actor, resume ? "create (resumed)" : "create", observer, cancellationToken);
            await AnnotateAsync(record, cancellationToken);
            record = (await Records.ChangeAsync(record.Name, actor, "ready", force: true, r => r with { Creating = null }, cancellationToken))!;
        }
        catch (Exception failure) when (failure is not (OutOfMemoryException or StackOverflowException))
        {
            // Nothing is left half-made: the namespaces, keys and record go again, whatever stopped the create.
            try
            {
                await RemoveAsync(record, CancellationToken.None);
                await PurgeKeysAsync(record.Name, CancellationToken.None);
                await Records.ChangeAsync(record.Name, actor, "delete (the create failed)", force: true, _ => null, CancellationToken.None);
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

    /// <summary>A namespace of the environment: labelled as its own, with the class's ResourceQuota and LimitRange.</summary>
    private static async Task PrepareNamespaceAsync(IClusterClient client, EnvironmentRecord record, string ns, PurposeClass cls, CancellationToken cancellationToken)
    {
        JsonObject Labels() => new() { [EnvironmentOverlay.Label] = record.Name };
        JsonObject Quantities(IReadOnlyDictionary<string, string> values) => new(values.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        await client.ApplyAsync(
            new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns, ["labels"] = Labels() } },
            FieldManager,
            cancellationToken);
        if (cls.Quota.Count > 0)
        {
            await client.ApplyAsync(
                new JsonObject
                {
                    ["apiVersion"] = "v1", ["kind"] = "ResourceQuota",
                    ["metadata"] = new JsonObject { ["name"] = "capstan-environment", ["namespace"] = ns, ["labels"] = Labels() },
                    ["spec"] = new JsonObject { ["hard"] = Quantities(cls.Quota) },
                },
                FieldManager,
                cancellationToken);
        }

        if (cls.Defaults.Requests.Count + cls.Defaults.Limits.Count > 0)
        {
            var item = new JsonObject { ["type"] = "Container" };
            if (cls.Defaults.Requests.Count > 0)
            {
                item["defaultRequest"] = Quantities(cls.Defaults.Requests);
            }

            if (cls.Defaults.Limits.Count > 0)
            {
                item["default"] = Quantities(cls.Defaults.Limits);
            }

            await client.ApplyAsync(
                new JsonObject
                {
                    ["apiVersion"] = "v1", ["kind"] = "LimitRange",
                    ["metadata"] = new JsonObject { ["name"] = "capstan-environment", ["namespace"] = ns, ["labels"] = Labels() },
                    ["spec"] = new JsonObject { ["limits"] = new JsonArray(item) },
                },
                FieldManager,
                cancellationToken);
        }
    }

    private static DeployRequest Request(EnvironmentRecord record, string actor, string what) =>
        new(new RenderSelection(), false, false, Core.Planning.Planner.DefaultConcurrency,
            new ExecutorOptions { Actor = actor, Reason = $"environment {record.Name}: {what}", NoRollback = true, Announce = false });

    /// <summary>Announcements that could not be sent (each is also left out of nothing else: the work went on).</summary>
    public event Action<string>? Warning;

    /// <summary>Announces an environment's creation or deletion (capstan.yaml's <c>notify:</c>); failures go to <see cref="Warning"/>.</summary>
    private async Task AnnounceAsync(string what, EnvironmentRecord record, string actor, CancellationToken cancellationToken)
    {
        var text = what == "env.create"
            ? $"Created test environment {record.Name} ({record.Purpose}, {string.Join(", ", record.Groups)} in {string.Join(", ", record.Datacenters)}) for {record.Owner}, until {record.Expires.UtcDateTime:yyyy-MM-dd HH:mm}Z"
            : $"Deleted test environment {record.Name} of {record.Owner}";
        var fields = new JsonObject
        {
            ["environment"] = record.Name,
            ["owner"] = record.Owner,
            ["purpose"] = record.Purpose,
            ["groups"] = new JsonArray([.. record.Groups.Select(g => (JsonNode)g)]),
            ["datacenters"] = new JsonArray([.. record.Datacenters.Select(d => (JsonNode)d)]),
        };
        foreach (var problem in await Announcer.For(model, time).AnnounceAsync(new Announcement(what, actor, text, time.GetUtcNow(), fields), cancellationToken))
        {
            Warning?.Invoke(problem);
        }
    }

    /// <summary>Deploys every group of an environment in every one of its datacenters, as one plan, with its own state.</summary>
    private async Task<IReadOnlyList<DeployResult>> DeployAsync(EnvironmentRecord record, string actor, string what, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var service = Deployer(record);
        var request = Request(record, actor, what);
        var prepared = await service.PrepareAsync(request, await EnvironmentScope.ReadStateAsync(model, record, store, actor, time, cancellationToken), cancellationToken);
        if (prepared.Plan.IsNoOp)
        {
            return [];
        }

        var result = await service.RunAsync(prepared.Plan, request.Executor, observer, cancellationToken);
        return result.Succeeded ? [result] : throw new DeployFailedException($"environment {record.Name} did not deploy: {result.Cause}");
    }

    /// <summary>Removes every key the environment's project holds in the state store (state, journals, plan records), its lock aside.</summary>
    private async Task PurgeKeysAsync(string name, CancellationToken cancellationToken)
    {
        var project = EnvironmentScope.Project(model, name);
        var (items, _) = await store.ListAsync(project + "/", cancellationToken);
        var keys = items.Select(i => i.Key).Where(k => k != DeployLock.Key(project)).ToList();
        foreach (var chunk in keys.Chunk(64))
        {
            await store.CommitAsync(new StoreTxn([], [.. chunk.Select(k => (StoreOp)new StoreOp.Delete(k))]), cancellationToken);
        }
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
        await PurgeKeysAsync(name, cancellationToken);
        await Records.ChangeAsync(name, actor, "delete", force, _ => null, cancellationToken);
        await AnnounceAsync("env.delete", record, actor, cancellationToken);
    }

    /// <summary>The project an environment deploys as: its own state, lock, journal and plan records.</summary>
    private string ProjectOf(string name) => EnvironmentScope.Project(model, name);

    /// <summary>The namespaces of an environment in a datacenter, as they are in the cluster (absent ones left out).</summary>
    public async Task<IReadOnlyList<JsonObject>> NamespacesAsync(EnvironmentRecord record, string dc, CancellationToken cancellationToken)
    {
        var found = new List<JsonObject>();
        foreach (var group in AllNamespaces(record))
        {
            if (await clusters[dc].GetAsync(new ObjectRef("v1", "Namespace", null, EnvironmentNames.Namespace(record.Name, group)), cancellationToken) is { } ns)
            {
                found.Add(ns);
            }
        }

        return found;
    }

    /// <summary>Every namespace the environment may have (its backends' too, whether or not its class deploys them now).</summary>
    private static IEnumerable<string> AllNamespaces(EnvironmentRecord record) => record.Groups.Append(BackendCatalog.Namespace);

    private DeployService Deployer(EnvironmentRecord record)
    {
        var (scoped, renderer) = EnvironmentScope.Scope(model, files, record);
        return new(scoped, renderer, clusters, store, time);
    }

    /// <summary>The record on every namespace: owner, purpose, expiry (kube-janitor's <c>janitor/expires</c> too).</summary>
    private async Task AnnotateAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var expires = record.Expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var dc in record.Datacenters)
        {
            foreach (var group in EnvironmentScope.Namespaces(model, record))
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
                    FieldManager,
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
            foreach (var group in AllNamespaces(record))
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
