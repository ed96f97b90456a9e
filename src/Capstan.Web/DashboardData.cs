using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.Deploy.Json;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;
using Capstan.State;

namespace Capstan.Web;

/// <summary>
/// The data of every page and of <c>/api/v1</c>, as JSON: built once here, served as it is by the API and rendered
/// as HTML by the Razor components of <c>Components/</c>. It reads the repo, the state store and the clusters, the way the CLI does.
/// </summary>
public sealed class DashboardData(FarmModel model, IRepoFiles files, IClusters clusters, IStateStore store, TimeProvider time) : IAsyncDisposable
{
    /// <summary>
    /// Watches of every datacenter, kept open: what runs where is read from them (the records, Deployments,
    /// ReplicaSets and Pods of each namespace), so a page costs the clusters no request once they are listed.
    /// </summary>
    private readonly Dictionary<string, RolloutWatcher> _watchers = clusters.Datacenters.ToDictionary(dc => dc, dc => new RolloutWatcher(clusters[dc], time) { LabelSelectors = FarmStatus.WatchedSelectors }, StringComparer.Ordinal);

    /// <summary>The farm's model.</summary>
    public FarmModel Model => model;

    private readonly FarmRenderer _renderer = new(model, files);

    /// <summary>The farm's state store.</summary>
    public IStateStore Store => store;

    /// <summary>The repo's files (read again by every action, so that a job deploys the repo as it is then).</summary>
    public IRepoFiles Files => files;

    /// <summary>The clusters of every datacenter.</summary>
    public IClusters Clusters => clusters;

    /// <summary>The dynamic state service (the same rules as <c>capstan state</c>).</summary>
    public DynamicStateService State { get; } = new(store, model.Project, [.. model.DatacenterNames], time);

    /// <summary>The test environments (the same service as <c>capstan env</c>).</summary>
    public EnvironmentService Environments { get; } = new(model, files, clusters, store, time);

    /// <summary>The repo's key of Secret fingerprints (the CLI's too): a visitor sees that a value changed, and cannot test a guess of it.</summary>
    private readonly byte[] _maskKey = Core.Security.MaskKey.ForRepo(model.RepoRoot);

    /// <summary>The largest diff table (lines × lines) one request may build.</summary>
    private const long MaxDiffCells = 4_000_000;

    /// <summary>Closes the watches.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var watcher in _watchers.Values)
        {
            await watcher.DisposeAsync();
        }
    }

    /// <summary>The overview: a card per datacenter (primary, read-only, maintenance), the lock, the running deploy, and the version matrix.</summary>
    public async Task<JsonObject> OverviewAsync(CancellationToken cancellationToken)
    {
        var stateRead = State.ReadAsync(cancellationToken);
        var holder = DeployLock.HolderAsync(store, model.Project, cancellationToken);
        var running = DeployProgress.RunningAsync(store, model.Project, cancellationToken);
        var holds = await new HoldStore(store, model.Project).ListAsync(cancellationToken);
        var state = (await stateRead).Document;
        var status = StatusAsync(state?.State, holds, cancellationToken);
        return new JsonObject
        {
            ["project"] = model.Project,
            ["datacenters"] = new JsonArray([.. model.DatacenterNames.Select(dc => (JsonNode)new JsonObject
            {
                ["name"] = dc,
                ["primary"] = state is null ? null : state.State.PrimaryDc == dc,
                ["readOnly"] = state?.State.ReadOnly.GetValueOrDefault(dc),
                ["maintenance"] = state is null ? null : state.State.MaintenanceEnabled && state.State.PrimaryDc == dc && !state.State.IsReadOnly(dc),
            })]),
            ["state"] = state is null ? null : StateJson(state.State, state.Sequence, state.Updated),
            ["lock"] = LockJson(await holder),
            ["deploying"] = (await running)?["planId"]?.GetValue<string>(),
            ["status"] = (await status).ToJson(),
            ["holds"] = new JsonArray([.. holds.Select(h => JsonNode.Parse(h.ToJson()))]),
            ["stateMismatches"] = state is null ? null : new JsonArray([.. (await MaintenanceReflection.MismatchesAsync(model, clusters, state.State, cancellationToken)).Select(m => (JsonNode)m)]),
        };
    }

    /// <summary>Every deployed release: the JSON of <c>capstan status -o json</c>.</summary>
    public async Task<JsonObject> ReleasesAsync(CancellationToken cancellationToken) =>
        (await StatusAsync((await State.ReadAsync(cancellationToken)).State, await new HoldStore(store, model.Project).ListAsync(cancellationToken), cancellationToken)).ToJson();

    /// <summary>Every deployed release with its sync and health verdicts, as <c>capstan status</c> judges them.</summary>
    private async Task<FarmStatus> StatusAsync(Core.State.DynamicState? state, IReadOnlyList<ReleaseHold> holds, CancellationToken cancellationToken) =>
        await ReleaseSync.JudgeAsync(
            await FarmStatus.ReadAsync(_watchers, model.Groups.Select(g => g.Namespace), null, cancellationToken), model, _renderer, clusters, state, holds, cancellationToken);

    /// <summary>One release: its revisions, its pods and their problems, and recent events; null when the farm has no such release.</summary>
    public async Task<JsonObject?> ReleaseAsync(string dc, string ns, string release, CancellationToken cancellationToken)
    {
        if (!model.DatacenterNames.Contains(dc) || model.FindRelease(new ReleaseRef(ns, release)) is null)
        {
            return null;
        }

        // The records and pods come from the watches the overview keeps open: no request to the cluster for them.
        var (history, livePods) = await _watchers[dc].WaitAsync<Tuple<List<ReleaseRecord>, IReadOnlyList<JsonObject>>>(ns, FarmStatus.WatchedKinds, view =>
        {
            var records = view.Objects("v1", "Secret")
                .Where(s => s["metadata"]?["labels"]?[ReleaseRecords.RecordLabel]?.GetValue<string>() == "true" && s["metadata"]?["labels"]?[ReleaseRecords.RecordOfLabel]?.GetValue<string>() == release)
                .Select(s => ReleaseRecords.FromSecret(dc, s))
                .Where(r => r.Id.Release == release)
                .OrderByDescending(r => r.Revision)
                .ToList();
            return Tuple.Create(records, view.Objects("v1", "Pod"));
        }, new WaitLimits { ApiOutageTolerance = TimeSpan.FromSeconds(5) }, null, cancellationToken);
        var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history.FirstOrDefault();
        var pods = new JsonArray();
        var podNames = new HashSet<string>(StringComparer.Ordinal);
        var deploymentNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var deployment in current?.Manifest.Where(o => o["kind"]?.GetValue<string>() == "Deployment") ?? [])
        {
            deploymentNames.Add(deployment.Kube.Name);
            if (deployment["spec"]?["selector"]?["matchLabels"] is not JsonObject labels)
            {
                continue;
            }

            var selector = labels.Select(kv => (kv.Key, Value: kv.Value?.GetValue<string>())).ToList();
            foreach (var pod in livePods.Where(p => selector.All(l => p["metadata"]?["labels"]?[l.Key]?.GetValue<string>() == l.Value)).OrderBy(p => p.Kube.Name, StringComparer.Ordinal))
            {
                var name = pod.Kube.Name;
                podNames.Add(name);
                var statuses = pod["status"]?["containerStatuses"] as JsonArray ?? [];
                pods.Add(new JsonObject
                {
                    ["name"] = name,
                    ["phase"] = pod["status"]?["phase"]?.GetValue<string>(),
                    ["node"] = pod["spec"]?["nodeName"]?.GetValue<string>(),
                    ["ready"] = statuses.Count(c => c?["ready"]?.GetValue<bool>() == true),
                    ["containers"] = statuses.Count,
                    ["problem"] = PodProblem(pod),
                });
            }
        }

        // Events too, from a watch of the namespace's Events kept open once a release page of it was read.
        var namespaceEvents = await _watchers[dc].WaitAsync(ns, EventKinds, view => view.Objects("v1", "Event"), new WaitLimits { ApiOutageTolerance = TimeSpan.FromSeconds(5) }, null, cancellationToken);
        var events = namespaceEvents
            .Where(e => e["involvedObject"]?["name"]?.GetValue<string>() is { } target && (podNames.Contains(target) || deploymentNames.Any(d => target.StartsWith(d, StringComparison.Ordinal))))
            .OrderByDescending(e => e["lastTimestamp"]?.GetValue<string>() ?? e["eventTime"]?.GetValue<string>() ?? string.Empty, StringComparer.Ordinal)
            .Take(20)
            .Select(e => (JsonNode)new JsonObject
            {
                ["type"] = e["type"]?.GetValue<string>(),
                ["reason"] = e["reason"]?.GetValue<string>(),
                ["object"] = $"{e["involvedObject"]?["kind"]?.GetValue<string>()}/{e["involvedObject"]?["name"]?.GetValue<string>()}",
                ["message"] = e["message"]?.GetValue<string>(),
                ["at"] = e["lastTimestamp"]?.GetValue<string>() ?? e["eventTime"]?.GetValue<string>(),
            });
        return new JsonObject
        {
            ["release"] = new ReleaseId(dc, ns, release).ToString(),
            ["datacenter"] = dc,
            ["namespace"] = ns,
            ["name"] = release,
            ["current"] = current?.Revision,
            ["revisions"] = RevisionJson.ToNode(history.OrderByDescending(r => r.Revision).Select(RevisionJson.Of)),
            ["podSummary"] = PodSummary(pods),
            ["pods"] = pods,
            ["events"] = new JsonArray([.. events]),
        };
    }

    /// <summary>
    /// The difference between two revisions of a release, object by object, as a unified diff of their YAML with every
    /// Secret value masked; null when the release or a revision does not exist.
    /// </summary>
    public async Task<JsonObject?> DiffAsync(string dc, string ns, string release, int from, int to, CancellationToken cancellationToken)
    {
        if (!model.DatacenterNames.Contains(dc) || model.FindRelease(new ReleaseRef(ns, release)) is null)
        {
            return null;
        }

        var history = (await ReleaseRecords.ListAsync(clusters[dc], dc, ns, cancellationToken)).GetValueOrDefault(new ReleaseId(dc, ns, release)) ?? [];
        if (history.FirstOrDefault(r => r.Revision == from) is not { } before || history.FirstOrDefault(r => r.Revision == to) is not { } after)
        {
            return null;
        }

        static Dictionary<string, JsonObject> ByPath(ReleaseRecord record) =>
            record.Manifest.ToDictionary(o => $"{o["kind"]?.GetValue<string>()}/{o["metadata"]?["name"]?.GetValue<string>()}", o => o, StringComparer.Ordinal);
        var old = ByPath(before);
        var @new = ByPath(after);
        var text = new System.Text.StringBuilder();
        foreach (var path in old.Keys.Union(@new.Keys).Order(StringComparer.Ordinal))
        {
            var a = old.TryGetValue(path, out var o) ? YamlEmitter.Emit(SecretMasker.Mask(o, _maskKey)) : string.Empty;
            var b = @new.TryGetValue(path, out var n) ? YamlEmitter.Emit(SecretMasker.Mask(n, _maskKey)) : string.Empty;
            if (a == b)
            {
                continue;
            }

            // The diff's table grows with the product of the two sides' lines: a huge object is named, not diffed.
            var (linesA, linesB) = (a.Count(c => c == '\n') + 1L, b.Count(c => c == '\n') + 1L);
            text.Append(linesA * linesB > MaxDiffCells
                ? $"--- revision {from}/{path}\n+++ revision {to}/{path}\n(changed; {linesA} and {linesB} lines are too many to diff here: use 'capstan history' and 'capstan diff')\n"
                : UnifiedDiff.Create(a, b, $"revision {from}/{path}", $"revision {to}/{path}"));
        }

        return new JsonObject
        {
            ["release"] = new ReleaseId(dc, ns, release).ToString(),
            ["from"] = from,
            ["to"] = to,
            ["diff"] = text.ToString(),
        };
    }

    /// <summary>Deploys (newest first) and dynamic-state changes (newest first), each filtered by actor and/or text when given.</summary>
    public async Task<JsonObject> HistoryAsync(string? actor, string? text, CancellationToken cancellationToken)
    {
        bool Matches(string who, params string?[] fields) =>
            (actor is null || who.Equals(actor, StringComparison.OrdinalIgnoreCase))
            && (text is null || fields.Any(f => f?.Contains(text, StringComparison.OrdinalIgnoreCase) == true));
        var deploys = (await DeployProgress.FinishedAsync(store, model.Project, DeployJournalLimit, cancellationToken))
            .Where(d => Matches(d["actor"]?.GetValue<string>() ?? string.Empty, d["reason"]?.GetValue<string>(), d["planId"]?.GetValue<string>(), d["cause"]?.GetValue<string>()))
            .Select(d =>
            {
                var copy = d.DeepClone().AsObject();
                if (DateTimeOffset.TryParse(d["started"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var started)
                    && DateTimeOffset.TryParse(d["finished"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var finished))
                {
                    copy["seconds"] = Math.Round((finished - started).TotalSeconds, 1);
                }

                return (JsonNode)copy;
            });
        var changes = (await State.HistoryAsync(cancellationToken)).Reverse()
            .Where(h => Matches(h.Stamp.Actor, h.Stamp.Reason, h.Change))
            .Select(h => (JsonNode)new JsonObject
            {
                ["sequence"] = h.Sequence,
                ["at"] = h.Stamp.At.ToString("O", CultureInfo.InvariantCulture),
                ["actor"] = h.Stamp.Actor,
                ["reason"] = h.Stamp.Reason,
                ["change"] = h.Change,
                ["forced"] = h.Forced,
                ["before"] = h.Previous is null ? null : StateValues(h.Previous),
                ["after"] = StateValues(h.Current),
            });
        return new JsonObject
        {
            ["filter"] = new JsonObject { ["actor"] = actor, ["text"] = text },
            ["deploys"] = new JsonArray([.. deploys]),
            ["stateChanges"] = new JsonArray([.. changes]),
        };
    }

    /// <summary>How many finished deploys the history shows.</summary>
    public const int DeployJournalLimit = 200;

    /// <summary>The running deploy (its plan by stage and datacenter, each release's state and readiness) and the last finished one.</summary>
    public async Task<JsonObject> DeployAsync(CancellationToken cancellationToken)
    {
        var running = await DeployProgress.RunningAsync(store, model.Project, cancellationToken);
        var events = new Dictionary<(string Dc, string Ns), IReadOnlyList<JsonObject>>();
        foreach (var action in running?["plan"] as JsonArray ?? [])
        {
            // Readiness of the releases being rolled out, from their clusters.
            if (action is JsonObject a && a["state"]?.GetValue<string>() is "Applying" or "Waiting"
                && a["release"]?.GetValue<string>()?.Split('/') is [var dc, var ns, var release] && _watchers.TryGetValue(dc, out var watcher))
            {
                var status = await FarmStatus.ReadAsync(new Dictionary<string, RolloutWatcher> { [dc] = watcher }, [ns], release, cancellationToken);
                if (status.Releases.FirstOrDefault(r => r.Record.Id.Datacenter == dc) is { } s)
                {
                    a["ready"] = s.Ready.Ready;
                    a["desired"] = s.Ready.Desired;
                    a["problem"] = s.Ready.Problem;

                    // The latest events of its Deployments and their pods (one list per namespace in flight).
                    if (!events.TryGetValue((dc, ns), out var list))
                    {
                        list = await watcher.WaitAsync(ns, EventKinds, view => view.Objects("v1", "Event"), new WaitLimits { ApiOutageTolerance = TimeSpan.FromSeconds(5) }, null, cancellationToken);
                        events[(dc, ns)] = list;
                    }

                    var deployments = s.Record.Manifest.Where(o => o["kind"]?.GetValue<string>() == "Deployment").Select(o => o.Kube.Name).ToList();
                    a["events"] = new JsonArray([.. list
                        .Where(e => e["involvedObject"]?["name"]?.GetValue<string>() is { } target && deployments.Any(d => target.StartsWith(d, StringComparison.Ordinal)))
                        .OrderByDescending(e => e["lastTimestamp"]?.GetValue<string>() ?? e["eventTime"]?.GetValue<string>() ?? string.Empty, StringComparer.Ordinal)
                        .Take(3)
                        .Select(e => (JsonNode)$"{e["reason"]?.GetValue<string>()}: {e["message"]?.GetValue<string>()}")]);
                }
            }
        }

        if (running is not null && DateTimeOffset.TryParse(running["started"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started))
        {
            running["timeline"] = DeployTimeline.Svg(running, (time.GetUtcNow() - started).TotalSeconds, "running-timeline");
        }

        var last = (await DeployProgress.FinishedAsync(store, model.Project, 1, cancellationToken)).FirstOrDefault()?.DeepClone().AsObject();
        if (last is not null)
        {
            last["timeline"] = DeployTimeline.Svg(last, id: "last-timeline");
        }

        return new JsonObject
        {
            ["running"] = running,
            ["last"] = last,
        };
    }

    /// <summary>One finished deploy: its record (who, why, each release's result and times) and its timeline; null when it is not kept.</summary>
    public async Task<JsonObject?> DeployRecordAsync(string planId, CancellationToken cancellationToken)
    {
        var record = (await DeployProgress.FinishedAsync(store, model.Project, DeployJournalLimit, cancellationToken)).FirstOrDefault(d => d["planId"]?.GetValue<string>() == planId)?.DeepClone().AsObject();
        if (record is not null)
        {
            record["timeline"] = DeployTimeline.Svg(record);
        }

        return record;
    }

    /// <summary>Where the train is (as <c>capstan train status -o json</c>), with what the pods serve; <c>configured: false</c> for a farm without a train.</summary>
    public async Task<JsonObject> TrainAsync(CancellationToken cancellationToken)
    {
        if (model.Train is null)
        {
            return new JsonObject { ["configured"] = false };
        }

        var status = await Capstan.Deploy.Train.TrainStatus.ReadAsync(new Capstan.Deploy.Train.TrainService(model, files, store, time), clusters, cancellationToken);
        return status.ToJson();
    }

    /// <summary>The environments with health and drift count, soonest expiry first.</summary>
    public async Task<JsonObject> EnvironmentsAsync(CancellationToken cancellationToken)
    {
        var production = (await State.ReadAsync(cancellationToken)).State;
        var list = new JsonArray();
        foreach (var record in (await Environments.Records.ListAsync(cancellationToken)).OrderBy(r => r.Expires))
        {
            var item = RecordJson(record);
            var (ready, desired) = await Environments.HealthAsync(record, cancellationToken);
            item["health"] = new JsonObject { ["ready"] = ready, ["desired"] = desired };
            item["behind"] = await BehindAsync(record, cancellationToken);
            try
            {
                item["drift"] = production is null ? null : (await Environments.DriftAsync(record.Name, production, cancellationToken)).Count;
            }
            catch (Exception ex) when (ex is UserInputException or RepoValidationException)
            {
                item["drift"] = null;
                item["driftError"] = ex.Message;
            }

            list.Add(item);
        }

        return new JsonObject
        {
            ["now"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["environments"] = list,
            ["classes"] = new JsonArray([.. Environments.Policy.Classes.Select(c => (JsonNode)new JsonObject
            {
                ["name"] = c.Name,
                ["maxDays"] = c.MaxLifetime.TotalDays,
                ["links"] = c.RequiresLinks,
                ["base"] = c.Base?.ToString().ToLowerInvariant(),
                ["description"] = c.Description,
            })]),
            ["groups"] = new JsonArray([.. model.Groups.Select(g => (JsonNode)g.Namespace)]),
            ["defaultGroups"] = new JsonArray([.. EnvironmentShape.DefaultGroups(model).Select(g => (JsonNode)g)]),
            ["datacenters"] = new JsonArray([.. model.DatacenterNames.Select(d => (JsonNode)d)]),
        };
    }

    /// <summary>One environment: its record, history and drift report; null when there is none.</summary>
    public async Task<JsonObject?> EnvironmentAsync(string name, CancellationToken cancellationToken)
    {
        if (await Environments.Records.GetAsync(name, cancellationToken) is not var (record, _))
        {
            return null;
        }

        var item = RecordJson(record);
        var (ready, desired) = await Environments.HealthAsync(record, cancellationToken);
        item["health"] = new JsonObject { ["ready"] = ready, ["desired"] = desired };
        item["behind"] = await BehindAsync(record, cancellationToken);
        item["history"] = new JsonArray([.. (await Environments.Records.HistoryAsync(name, cancellationToken)).Select(h => (JsonNode)new JsonObject
        {
            ["at"] = h.At.ToString("O", CultureInfo.InvariantCulture),
            ["actor"] = h.Actor,
            ["what"] = h.What,
            ["forced"] = h.Forced,
        })]);
        if ((await State.ReadAsync(cancellationToken)).State is { } production)
        {
            try
            {
                var drift = await Environments.DriftAsync(name, production, cancellationToken);
                item["drift"] = drift.ToJson();
            }
            catch (Exception ex) when (ex is UserInputException or RepoValidationException)
            {
                item["driftError"] = ex.Message;
            }
        }

        return item;
    }

    /// <summary>The switchover in progress, or the last one; null when there never was one.</summary>
    public async Task<JsonObject?> SwitchoverAsync(CancellationToken cancellationToken) =>
        (await Switchover.ReadJournalAsync(store, model.Project, cancellationToken))?.ToJson();

    private JsonObject RecordJson(EnvironmentRecord record)
    {
        var item = JsonNode.Parse(record.ToJson())!.AsObject();
        item["state"] = record.Creating is not null ? "creating" : record.Sleeping is null ? "awake" : "asleep";
        item["namespaces"] = new JsonArray([.. record.Datacenters.SelectMany(dc => EnvironmentScope.Namespaces(model, record).Select(g => (JsonNode)$"{dc}/{EnvironmentNames.Namespace(record.Name, g)}"))]);
        item["urls"] = new JsonObject([.. EnvironmentScope.Urls(model, record).Select(u => KeyValuePair.Create(u.Group, (JsonNode?)u.Url))]);
        if (EnvironmentScope.Backends(model, record) is { } backends)
        {
            item["backends"] = new JsonObject([.. backends.Items.Select(i => KeyValuePair.Create(i.Production.Name, (JsonNode?)i.Source.ToString()))]);
        }

        return item;
    }

    /// <summary>What a refresh would change, or why that cannot be said (the environment no longer renders against the repo).</summary>
    private async Task<JsonNode> BehindAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        try
        {
            return new JsonArray([.. (await Environments.BehindAsync(record, cancellationToken)).Select(b => (JsonNode)b)]);
        }
        catch (Exception ex) when (ex is UserInputException or RepoValidationException)
        {
            return new JsonArray((JsonNode)$"(unknown: {ex.Message})");
        }
    }

    private static JsonObject StateValues(DynamicState state) => new()
    {
        ["primary_dc"] = state.PrimaryDc,
        ["read_only"] = new JsonObject(state.ReadOnly.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["maintenance_enabled"] = state.MaintenanceEnabled,
    };

    private static JsonObject StateJson(DynamicState state, long sequence, ChangeStamp updated)
    {
        var json = StateValues(state);
        json["sequence"] = sequence;
        json["updatedBy"] = updated.Actor;
        json["updatedAt"] = updated.At.ToString("O", CultureInfo.InvariantCulture);
        json["reason"] = updated.Reason;
        json["incoherences"] = new JsonArray([.. state.Incoherences().Select(i => (JsonNode)i)]);
        return json;
    }

    private static JsonObject? LockJson(LockHolder? holder) => holder is null ? null : new JsonObject
    {
        ["actor"] = holder.Actor,
        ["reason"] = holder.Reason,
        ["since"] = holder.Since.ToString("O", CultureInfo.InvariantCulture),
        ["manual"] = holder.Manual,
        ["host"] = holder.Host,
    };

    private static readonly IReadOnlyList<(string ApiVersion, string Kind)> EventKinds = [("v1", "Event")];

    /// <summary>Most pod problems a release's summary lists (the rest are in the full list of pods).</summary>
    public const int ProblemsShown = 20;

    /// <summary>
    /// A release's pods at a glance: how many, how many ready, how many in each phase, and the first
    /// <see cref="ProblemsShown"/> with a problem.
    /// </summary>
    private static JsonObject PodSummary(JsonArray pods)
    {
        var all = pods.OfType<JsonObject>().ToList();
        var problems = all.Where(p => p["problem"] is not null).ToList();
        return new JsonObject
        {
            ["total"] = all.Count,
            ["ready"] = all.Count(p => p["containers"]!.GetValue<int>() > 0 && p["ready"]!.GetValue<int>() == p["containers"]!.GetValue<int>()),
            ["byPhase"] = new JsonObject(all.GroupBy(p => p["phase"]?.GetValue<string>() ?? "Unknown").OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Count()))),
            ["problems"] = new JsonArray([.. problems.Take(ProblemsShown).Select(p => (JsonNode)new JsonObject { ["name"] = p["name"]!.GetValue<string>(), ["problem"] = p["problem"]!.GetValue<string>() })]),
            ["moreProblems"] = Math.Max(0, problems.Count - ProblemsShown),
        };
    }

    /// <summary>The first thing wrong with a pod: a waiting or terminated container's reason, or its phase when not running.</summary>
    private static string? PodProblem(JsonObject pod)
    {
        foreach (var status in pod["status"]?["containerStatuses"] as JsonArray ?? [])
        {
            if (status?["state"]?["waiting"]?["reason"]?.GetValue<string>() is { } waiting && waiting != "ContainerCreating")
            {
                return $"{status["name"]?.GetValue<string>()}: {waiting}";
            }

            if (status?["state"]?["terminated"]?["reason"]?.GetValue<string>() is { } terminated && terminated != "Completed")
            {
                return $"{status["name"]?.GetValue<string>()}: {terminated}";
            }
        }

        var phase = pod["status"]?["phase"]?.GetValue<string>();
        return phase is "Running" or "Succeeded" ? null : phase;
    }
}
