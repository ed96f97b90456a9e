using Capstan.Core.Diagnostics;

namespace Capstan.Core.Config;

/// <summary>A whole deployment repo: the farm's datacenters, endpoints, values layout and server groups.</summary>
public sealed record FarmModel(
    string Project,
    string RepoRoot,
    IReadOnlyList<DatacenterSpec> Datacenters,
    string StateEndpoint,
    string? StateSeed,
    string Registry,
    ValuesLayout Values,
    IReadOnlyList<ServerGroup> Groups,
    IReadOnlyList<SubsetSpec> Subsets)
{
    /// <summary>How the MediaWiki image is built (the defaults when capstan.yaml has no <c>image:</c>).</summary>
    public ImageBuildSpec Image { get; init; } = ImageBuildSpec.Default;

    /// <summary>
    /// The directory of the farm's OCI layout when <c>registry:</c> is an <c>oci-layout://PATH</c> (relative to the
    /// repo), else null (a registry).
    /// </summary>
    public string? RegistryLayout => Registry.StartsWith("oci-layout://", StringComparison.Ordinal)
        ? Path.GetFullPath(Path.Combine(RepoRoot, Registry["oci-layout://".Length..]))
        : null;

    /// <summary>The purpose classes of test environments (<c>test-environments:</c>; the defaults when absent).</summary>
    public Capstan.Core.Environments.EnvironmentPolicy EnvironmentPolicy { get; init; } = Capstan.Core.Environments.EnvironmentPolicy.Default;

    /// <summary>
    /// The farm's backends (capstan.yaml's <c>backends:</c>): production's values for their keys are generated from them,
    /// and environments get theirs through their class's profile. Null when the repo declares none.
    /// </summary>
    public Capstan.Core.Environments.BackendCatalog? Backends { get; init; }

    /// <summary>Whether and how a deploy warms the nodes with its new images before the rollout (<c>pre-pull:</c>).</summary>
    public PrePullSettings PrePull { get; init; } = PrePullSettings.Default;

    /// <summary>The gates between stages and the Prometheus their checks query (<c>gates:</c>, <c>prometheus:</c>).</summary>
    public GateSettings Gates { get; init; } = GateSettings.None;

    /// <summary>The weekly train: wikiversions, the wiki lists and the groups it moves through (<c>train:</c>); null when absent.</summary>
    public Capstan.Core.Train.TrainSettings? Train { get; init; }

    /// <summary>Where deploy, gate, rollback, switchover and environment announcements go (<c>notify:</c>).</summary>
    public NotifySettings Notify { get; init; } = NotifySettings.None;

    /// <summary>
    /// The test environment this model is scoped to (its groups, datacenters and project are the environment's), or
    /// null for production.
    /// </summary>
    public string? Environment { get; init; }

    /// <summary>The namespace a group lives in on the cluster: its own in production, <c>ENV--namespace</c> in an environment.</summary>
    public string LiveNamespace(ServerGroup group) => Environment is null ? group.Namespace : $"{Environment}--{group.Namespace}";

    /// <summary>The datacenter names in file order.</summary>
    public IEnumerable<string> DatacenterNames => Datacenters.Select(d => d.Name);

    /// <summary>A group by namespace, or null.</summary>
    public ServerGroup? FindGroup(string ns) => Groups.FirstOrDefault(g => g.Namespace == ns);

    /// <summary>A release by reference, or null.</summary>
    public ReleaseSpec? FindRelease(ReleaseRef reference) =>
        FindGroup(reference.Namespace)?.Releases.FirstOrDefault(r => r.Name == reference.Release);

    /// <summary>Every release with its group, groups and releases in file order.</summary>
    public IEnumerable<(ServerGroup Group, ReleaseSpec Release)> AllReleases() =>
        Groups.SelectMany(g => g.Releases.Select(r => (g, r)));
}

/// <summary>A datacenter and the cluster Capstan deploys to there (<c>local://eqiad</c>, a kubeconfig context, …).</summary>
public sealed record DatacenterSpec(string Name, string Cluster, SourceLocation Location);

/// <summary>A named subset of the farm's releases (capstan.yaml's <c>subsets:</c>): a staging cluster, one datacenter's debug servers.</summary>
public sealed record SubsetSpec(
    string Name,
    IReadOnlyList<string> Datacenters,
    IReadOnlyList<ReleaseRef>? Releases,
    SourceLocation Location)
{
    /// <summary>True when the subset holds the release in the datacenter.</summary>
    public bool Includes(string dc, ReleaseRef release) =>
        Datacenters.Contains(dc, StringComparer.Ordinal) && (Releases is null || Releases.Contains(release));
}

/// <summary>A release named across the farm: namespace and release.</summary>
public sealed record ReleaseRef(string Namespace, string Release)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Namespace}/{Release}";
}

/// <summary>A server group: one Kubernetes namespace with its traits and releases.</summary>
public sealed record ServerGroup(
    string Namespace,
    GroupTraits Traits,
    IReadOnlyList<ReleaseSpec> Releases,
    string File,
    int? TlsPort,
    SourceLocation TlsPortLocation);

/// <summary>How a group's pods serve: web requests, async jobs over HTTP, or command-line runs.</summary>
public enum ServingKind
{
    /// <summary>Web requests: httpd, a Service.</summary>
    Web,

    /// <summary>Asynchronous work over HTTP (job runners): httpd, a Service, long timeouts.</summary>
    Async,

    /// <summary>Command-line runs (cron, scripts): no httpd, no Service.</summary>
    Cli,
}

/// <summary>Whether the group serves from both datacenters or the primary only.</summary>
public enum Availability
{
    /// <summary>Both datacenters serve.</summary>
    ActiveActive,

    /// <summary>Only the primary datacenter serves.</summary>
    ActivePassive,
}

/// <summary>The traits that shape a group's objects; derived from its name unless the group file says otherwise.</summary>
public sealed record GroupTraits(ServingKind Serving, bool Periodic, Availability Availability)
{
    /// <summary>
    /// The traits a name implies: <c>jobrunner</c> or <c>-async</c> → async; <c>script</c> or <c>cron</c> → cli;
    /// <c>cron</c> → periodic. Anything else is web, active-active.
    /// </summary>
    public static GroupTraits FromName(string ns)
    {
        var isCron = ns.Contains("cron", StringComparison.Ordinal);
        var serving = ns.Contains("jobrunner", StringComparison.Ordinal) || ns.EndsWith("-async", StringComparison.Ordinal)
            ? ServingKind.Async
            : isCron || ns.Contains("script", StringComparison.Ordinal) ? ServingKind.Cli : ServingKind.Web;
        return new GroupTraits(serving, isCron, Availability.ActiveActive);
    }
}

/// <summary>What a release renders.</summary>
public enum ReleaseKind
{
    /// <summary>A MediaWiki release: Deployment (or CronJobs), ConfigMaps, Secrets, Service, NetworkPolicy.</summary>
    MediaWiki,

    /// <summary>The statsd-exporter support release whose Service MediaWiki pods read from their environment.</summary>
    StatsdExporter,

    /// <summary>The namespace's shared NetworkPolicies.</summary>
    MediaWikiCommon,

    /// <summary>A directory of plain Kubernetes YAML.</summary>
    Manifests,
}

/// <summary>The deployment stages, in the order they run.</summary>
public enum Stage
{
    /// <summary>Test servers (mw-debug) first.</summary>
    Testservers,

    /// <summary>Canaries next.</summary>
    Canaries,

    /// <summary>Everything else last.</summary>
    Production,
}

/// <summary>One release of a server group.</summary>
public sealed record ReleaseSpec(
    string Name,
    ReleaseKind Kind,
    Stage Stage,
    IReadOnlyList<ReleaseRef> Needs,
    ReplicaCounts? Replicas,
    CanarySpec? Canary,
    IReadOnlyList<MaintenanceJobSpec> CronJobs,
    string? ManifestsPath,
    IReadOnlyList<string>? Datacenters,
    SourceLocation Location)
{
    /// <summary>True for releases that others depend on and that carry no MediaWiki code.</summary>
    public bool IsSupport => Kind is ReleaseKind.StatsdExporter or ReleaseKind.MediaWikiCommon;

    /// <summary>True when the release is deployed in the datacenter.</summary>
    public bool RunsIn(string dc) => Datacenters is null || Datacenters.Contains(dc, StringComparer.Ordinal);
}

/// <summary>Replica counts per datacenter.</summary>
public sealed record ReplicaCounts(IReadOnlyDictionary<string, int> PerDatacenter)
{
    /// <summary>The count in a datacenter.</summary>
    public int For(string dc) => PerDatacenter.TryGetValue(dc, out var n) ? n : 0;
}

/// <summary>
/// A canary: a release whose pods join <see cref="Of"/>'s Service (label <c>routed_via</c>), sized at
/// <see cref="Percent"/> of its replicas, rounded up.
/// </summary>
public sealed record CanarySpec(string Of, decimal Percent)
{
    /// <summary>The canary's replicas for a main release of <paramref name="mainReplicas"/>: ceil(percent %).</summary>
    public int ReplicasFor(int mainReplicas) =>
        mainReplicas <= 0 ? 0 : (int)Math.Ceiling(mainReplicas * Percent / 100m);
}

/// <summary>A periodic maintenance job of a cron group.</summary>
public sealed record MaintenanceJobSpec(
    string Name,
    string Schedule,
    IReadOnlyList<string> Command,
    bool Suspended,
    string? Description,
    SourceLocation Location);
