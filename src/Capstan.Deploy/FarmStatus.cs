using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

namespace Capstan.Deploy;

/// <summary>How ready a release's Deployment is: ready of desired, the first pod problem; missing when its Deployment is gone.</summary>
public sealed record Readiness(int? Ready, int? Desired, string? Problem, bool Missing)
{
    /// <summary>A release without a Deployment.</summary>
    public static readonly Readiness None = new(null, null, null, Missing: false);

    /// <inheritdoc/>
    public override string ToString() =>
        Missing ? "missing" : Ready is null ? "-" : $"{Ready}/{Desired}" + (Problem is null ? string.Empty : $" ({Problem})");
}

/// <summary>One deployed release: its current record, how ready it is, and (once judged) whether it runs what the repo says.</summary>
public sealed record ReleaseStatus(ReleaseRecord Record, Readiness Ready)
{
    /// <summary>The MediaWiki image (the app container's), or null for a release without MediaWiki.</summary>
    public string? MediaWikiImage => Record.MediaWikiImage;

    /// <summary>The live workloads (Deployments) of the release as read, with their managedFields.</summary>
    public IReadOnlyList<JsonObject> Live { get; init; } = [];

    /// <summary>The sync verdict (<see cref="ReleaseSync"/>); null until judged.</summary>
    public SyncVerdict? Sync { get; init; }

    /// <summary>Its health, from its readiness.</summary>
    public HealthVerdict Health => HealthVerdict.Of(Ready);
}

/// <summary>
/// What runs where: every deployed release of the farm in every datacenter, with its revision, readiness and images,
/// and whether all of them run the same MediaWiki. <c>capstan status</c> and the dashboard show the same thing.
/// </summary>
public sealed record FarmStatus(IReadOnlyList<ReleaseStatus> Releases)
{
    /// <summary>The releases by the MediaWiki image they run.</summary>
    public IReadOnlyList<IGrouping<string, ReleaseStatus>> Versions =>
        [.. Releases.Where(r => r.MediaWikiImage is not null).GroupBy(r => r.MediaWikiImage!)];

    /// <summary>True when every release runs the same MediaWiki (or none runs any yet).</summary>
    public bool Consistent => Versions.Count <= 1;

    /// <summary>Reads the releases of the given namespaces (and release name, when given) in every datacenter of <paramref name="clusters"/>.</summary>
    public static async Task<FarmStatus> ReadAsync(IClusters clusters, IEnumerable<string> namespaces, string? release, CancellationToken cancellationToken)
    {
        var wanted = namespaces.ToList();
        var perDc = await Task.WhenAll(clusters.Datacenters.Order(StringComparer.Ordinal).Select(dc => ReadDcAsync(clusters[dc], dc, wanted, release, cancellationToken)));
        return new FarmStatus([.. perDc.SelectMany(r => r)]);
    }

    /// <summary>What a watcher of the status watches of Secrets: the release records only.</summary>
    public static IReadOnlyDictionary<(string ApiVersion, string Kind), string> WatchedSelectors { get; } =
        new Dictionary<(string ApiVersion, string Kind), string> { [("v1", "Secret")] = $"{ReleaseRecords.RecordLabel}=true" };

    /// <summary>The kinds the status is read from when it is kept by watches (with <see cref="WatchedSelectors"/>).</summary>
    public static readonly IReadOnlyList<(string ApiVersion, string Kind)> WatchedKinds = [("v1", "Secret"), .. RolloutWatcher.RolloutKinds];

    /// <summary>
    /// The same, from watches that stay open (for a long-running reader such as the dashboard): after the first list
    /// of each namespace and kind, a read costs no request at all. <paramref name="watchers"/> has one per datacenter.
    /// </summary>
    public static async Task<FarmStatus> ReadAsync(IReadOnlyDictionary<string, RolloutWatcher> watchers, IEnumerable<string> namespaces, string? release, CancellationToken cancellationToken)
    {
        var wanted = namespaces.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var limits = new WaitLimits { ApiOutageTolerance = TimeSpan.FromSeconds(5) };
        var unreachable = new System.Collections.Concurrent.ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        async Task<List<ReleaseStatus>> ReadAsync(string dc, RolloutWatcher watcher, string ns)
        {
            try
            {
                return await watcher.WaitAsync(ns, WatchedKinds, view => FromView(dc, view, release), limits, null, cancellationToken);
            }
            catch (Exception ex) when (ex is ApiOutageException or KubeApiException or KubeUnavailableException or KubeCredentialException)
            {
                // One datacenter that does not answer (or refuses) does not hide the others.
                unreachable.TryAdd(dc, ex.Message);
                return [];
            }
        }

        var reads = watchers.OrderBy(w => w.Key, StringComparer.Ordinal).SelectMany(w => wanted.Select(ns => ReadAsync(w.Key, w.Value, ns)));
        return new FarmStatus([.. (await Task.WhenAll(reads)).SelectMany(r => r)]) { Unreachable = unreachable.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal) };
    }

    /// <summary>The datacenters whose clusters could not be read, with why (their releases are missing from <see cref="Releases"/>).</summary>
    public IReadOnlyDictionary<string, string> Unreachable { get; init; } = new Dictionary<string, string>();

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<JsonObject, ReleaseRecord> Parsed = [];

    private static List<ReleaseStatus> FromView(string dc, WatchedNamespace view, string? release)
    {
        // A watch's objects are replaced, never changed in place: a record Secret is parsed once per version.
        var records = view.Objects("v1", "Secret")
            .Where(s => s["metadata"]?["labels"]?[ReleaseRecords.RecordLabel]?.GetValue<string>() == "true")
            .Select(s => Parsed.GetValue(s, secret => ReleaseRecords.FromSecret(dc, secret)))
            .Where(r => release is null || r.Id.Release == release)
            .GroupBy(r => r.Id);
        var sets = view.Objects("apps/v1", "ReplicaSet");
        var pods = view.Objects("v1", "Pod");
        var rows = new List<ReleaseStatus>();
        foreach (var history in records.OrderBy(g => g.Key.Release, StringComparer.Ordinal))
        {
            var current = history.Where(r => r.Status == "deployed").MaxBy(r => r.Revision) ?? history.MaxBy(r => r.Revision)!;
            var ready = Readiness.None;
            var workloads = new List<JsonObject>();
            foreach (var deployment in current.Manifest.Where(o => o.Kube.Kind == "Deployment"))
            {
                // Pods only name a problem while a rollout is unfinished, as the request-based read does.
                var live = view.Get("apps/v1", "Deployment", deployment.Kube.Name);
                ready = live is not null
                    && (RolloutStatus.Of(live, sets, []) is { Done: true } done ? done : RolloutStatus.Of(live, sets, pods)) is var s
                    ? new Readiness(s.Available, s.Desired, s.PodProblem, Missing: false)
                    : new Readiness(null, null, null, Missing: true);
                if (live is not null)
                {
                    workloads.Add(live);
                }
            }

            rows.Add(new ReleaseStatus(current, ready) { Live = workloads });
        }

        return rows;
    }

    private static async Task<List<ReleaseStatus>> ReadDcAsync(IClusterClient client, string dc, List<string> namespaces, string? release, CancellationToken cancellationToken)
    {
        var rows = new List<ReleaseStatus>();
        var deployments = new Dictionary<string, Dictionary<string, JsonObject>>(StringComparer.Ordinal);
        var records = await ReleaseRecords.ListAsync(client, dc, namespaces, cancellationToken);
        foreach (var (id, history) in records.Where(r => release is null || r.Key.Release == release)
                     .OrderBy(r => r.Key.Namespace, StringComparer.Ordinal).ThenBy(r => r.Key.Release, StringComparer.Ordinal))
        {
            var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history[0];
            var ready = Readiness.None;
            var workloads = new List<JsonObject>();
            foreach (var deployment in current.Manifest.Where(o => o.Kube.Kind == "Deployment"))
            {
                if (!deployments.TryGetValue(id.Namespace, out var listed))
                {
                    listed = (await client.ListAsync("apps/v1", "Deployment", id.Namespace, null, cancellationToken)).Items.ToDictionary(d => d.Kube.Name, StringComparer.Ordinal);
                    deployments[id.Namespace] = listed;
                }

                try
                {
                    var s = await client.GetRolloutStatusAsync(id.Namespace, deployment.Kube.Name, cancellationToken);
                    ready = new Readiness(s.Available, s.Desired, s.PodProblem, Missing: false);
                    if (listed.GetValueOrDefault(deployment.Kube.Name) is { } live)
                    {
                        workloads.Add(live);
                    }
                }
                catch (KubeNotFoundException)
                {
                    ready = new Readiness(null, null, null, Missing: true);
                }
            }

            rows.Add(new ReleaseStatus(current, ready) { Live = workloads });
        }

        return rows;
    }

    /// <summary>The status as <c>capstan status -o json</c> prints it (and <c>/api/v1/releases</c> serves it).</summary>
    public JsonObject ToJson()
    {
        var json = Json();
        if (Unreachable.Count > 0)
        {
            json["unreachable"] = new JsonObject(Unreachable.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        }

        return json;
    }

    private JsonObject Json() => new()
    {
        ["releases"] = new JsonArray([.. Releases.Select(r => (JsonNode)new JsonObject
        {
            ["release"] = r.Record.Id.ToString(),
            ["datacenter"] = r.Record.Id.Datacenter,
            ["namespace"] = r.Record.Id.Namespace,
            ["name"] = r.Record.Id.Release,
            ["revision"] = r.Record.Revision,
            ["status"] = r.Record.Status,
            ["ready"] = r.Ready.Ready,
            ["desired"] = r.Ready.Desired,
            ["missing"] = r.Ready.Missing,
            ["problem"] = r.Ready.Problem,
            ["at"] = r.Record.At.ToString("O", CultureInfo.InvariantCulture),
            ["actor"] = r.Record.Actor,
            ["planId"] = r.Record.PlanId,
            ["mediawikiImage"] = r.MediaWikiImage,
            ["images"] = new JsonObject(r.Record.Images.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["health"] = r.Health.State.ToString(),
            ["healthDetail"] = r.Health.Why,
            ["sync"] = r.Sync?.State.ToString(),
            ["syncDetail"] = r.Sync?.Why,
        })]),
        ["mediawikiVersions"] = new JsonObject(Versions.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)new JsonArray([.. g.Select(x => (JsonNode)x.Record.Id.ToString())])))),
        ["consistent"] = Consistent,
    };
}
