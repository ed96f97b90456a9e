using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;

namespace Capstan.Core.Planning;

/// <summary>
/// Builds a <see cref="Plan"/> from the rendered (desired) releases and what the clusters hold (live), as a pure
/// function: an object is applied when it is missing or any field Capstan sets differs from the live object; objects
/// the last deploy made and this render no longer has are pruned; a release whose objects all match and whose last
/// record is of the same manifest is a no-op.
/// </summary>
public static class Planner
{
    /// <summary>The default number of releases deployed at once per cluster.</summary>
    public const int DefaultConcurrency = 20;

    /// <summary>Builds the plan.</summary>
    public static Plan Build(
        FarmModel model,
        IReadOnlyList<RenderedRelease> desired,
        IReadOnlyDictionary<ReleaseId, LiveRelease> live,
        IReadOnlyDictionary<string, IReadOnlySet<string>> liveNamespaces,
        int concurrency = DefaultConcurrency,
        string? planId = null,
        IReadOnlyDictionary<ReleaseId, JudgedRelease>? judged = null)
    {
        var wantedIds = desired.Select(d => new ReleaseId(d.Datacenter, d.Namespace, d.Release)).ToHashSet();
        var results = new ReleaseAction[desired.Count];

        // Releases are compared independently: on every core, results back in render order.
        Parallel.For(0, desired.Count, i => results[i] = PlanRelease(model, desired[i], live, wantedIds, judged));
        var actions = results.ToList();

        var namespaces = desired.Select(r => (r.Datacenter, r.Namespace)).Distinct()
            .Where(p => !(liveNamespaces.GetValueOrDefault(p.Datacenter)?.Contains(p.Namespace) ?? false))
            .ToList();
        return new Plan(planId ?? NewPlanId(), actions, namespaces, concurrency);
    }

    private static ReleaseAction PlanRelease(
        FarmModel model,
        RenderedRelease release,
        IReadOnlyDictionary<ReleaseId, LiveRelease> live,
        HashSet<ReleaseId> wantedIds,
        IReadOnlyDictionary<ReleaseId, JudgedRelease>? judged)
    {
        var id = new ReleaseId(release.Datacenter, release.Namespace, release.Release);
        var spec = model.FindRelease(release.Ref)!;

        // A judged release comes with its objects, last-applied and verdicts: each object is compared once per plan.
        var judgement = judged?.GetValueOrDefault(id);
        var objects = judgement?.Objects ?? release.Objects.Select(KubeSerializer.ToNode).ToList();
        var hash = ManifestHash(objects);
        var current = live.GetValueOrDefault(id);
        var lastApplied = judgement?.LastApplied ?? LastApplied(current);
        var apply = new List<ObjectChange>();
        var drift = new List<ObjectDrift>();
        foreach (var obj in objects)
        {
            var kind = obj.Kube.Kind;
            var name = obj.Kube.Name;
            var key = LiveRelease.Key(kind, name);
            var liveObj = current?.Objects.GetValueOrDefault(key);
            if (liveObj is not null)
            {
                drift.AddRange(LiveProjection.Drift(obj, liveObj).Select(d => new ObjectDrift(kind, name, d.Path, d.Manager)));
            }

            if (liveObj is null)
            {
                apply.Add(new ObjectChange(kind, name, ObjectAction.Create, obj, null, [], []));
            }
            else if (judgement?.Verdicts.GetValueOrDefault(key) is { Kind: VerdictKind.NotAsked })
            {
                // Equal to what the last deploy applied, every field live as written: unchanged.
            }
            else if (judgement?.Verdicts.GetValueOrDefault(key) is { Kind: VerdictKind.Answered, Result: { } result })
            {
                // The server's dry run of the apply, against live: removed fields and canonical forms included.
                var (set, removed) = ObjectComparison.Compare(result, liveObj, obj, lastApplied.GetValueOrDefault(key));
                if (set.Count > 0 || removed.Count > 0)
                {
                    apply.Add(new ObjectChange(kind, name, ObjectAction.Update, obj, liveObj, set, removed, result));
                }
            }
            else if ((judgement?.Verdicts.GetValueOrDefault(key) is { Kind: VerdictKind.NoVerdict }
                         || ObjectComparison.NeedsServer(obj, liveObj, lastApplied.GetValueOrDefault(key), current?.LastRecord?.At))
                     && FirstDifference(obj, liveObj, string.Empty) is { } path)
            {
                // Not judged by a server (it refused, or a plan built without clusters): the first field that differs.
                apply.Add(new ObjectChange(kind, name, ObjectAction.Update, obj, liveObj, [path], []));
            }
        }

        var wanted = objects.Select(o => o.Kube.Key).ToHashSet(StringComparer.Ordinal);
        var prune = (current?.LastRecord?.Manifest ?? [])
            .Where(o => !wanted.Contains(o.Kube.Key))
            .Select(o => new ObjectPrune(o.Kube.ApiVersion, o.Kube.Kind, o.Kube.Namespace, o.Kube.Name))
            .ToList();
        var change = current?.LastRecord is null
            ? ReleaseChange.Install
            : apply.Count == 0 && prune.Count == 0 && current.LastRecord.ManifestHash == hash ? ReleaseChange.NoOp : ReleaseChange.Upgrade;
        var needs = spec.Needs.Select(n => new ReleaseId(release.Datacenter, release.NamespaceOf(n), n.Release))
            .Where(wantedIds.Contains)
            .ToList();
        return new ReleaseAction(id, release.Kind, spec.Stage, change, objects, apply, prune, needs, hash, current?.LastRecord?.Revision) { Drift = drift };
    }

    /// <summary>The objects the last deploy applied, by <see cref="LiveRelease.Key"/>.</summary>
    public static Dictionary<string, JsonObject> LastApplied(LiveRelease? current) =>
        (current?.LastRecord?.Manifest ?? [])
            .GroupBy(o => o.Kube.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);

    /// <summary>A short unique id for a plan: its time on <paramref name="time"/> (the system clock when null) and six random hex digits.</summary>
    public static string NewPlanId(TimeProvider? time = null) =>
        (time ?? TimeProvider.System).GetUtcNow().UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));

    /// <summary>The hash of a release's manifest: canonical JSON of its objects in order.</summary>
    public static string ManifestHash(IEnumerable<JsonObject> objects)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var obj in objects)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(obj.ToJsonString()));
            hash.AppendData("\n"u8);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    /// <summary>
    /// The first path where a desired field is missing from or differs from the live object; null when every field of
    /// the desired object is live with the same value (fields only the server sets are ignored).
    /// </summary>
    public static string? FirstDifference(JsonNode? desired, JsonNode? live, string path)
    {
        switch (desired)
        {
            case JsonObject map:
                if (live is not JsonObject liveMap)
                {
                    return path.Length == 0 ? "." : path;
                }

                foreach (var (key, value) in map)
                {
                    if (FirstDifference(value, liveMap[key], path + "." + key) is { } diff)
                    {
                        return diff;
                    }
                }

                return null;
            case JsonArray list:
                if (live is not JsonArray liveList || liveList.Count != list.Count)
                {
                    return path;
                }

                for (var i = 0; i < list.Count; i++)
                {
                    if (FirstDifference(list[i], liveList[i], $"{path}[{i}]") is { } diff)
                    {
                        return diff;
                    }
                }

                return null;
            case null:
                return live is null ? null : path;
            default:
                return ScalarEquals((JsonValue)desired, live) ? null : path;
        }
    }

    private static bool ScalarEquals(JsonValue desired, JsonNode? live)
    {
        if (live is not JsonValue liveValue)
        {
            return false;
        }

        var kind = desired.GetValueKind();
        if (kind != liveValue.GetValueKind())
        {
            return false;
        }

        return kind switch
        {
            JsonValueKind.String => desired.GetValue<string>() == liveValue.GetValue<string>(),
            JsonValueKind.Number => Number(desired) == Number(liveValue),
            _ => true,
        };
    }

    private static decimal Number(JsonValue value) =>
        value.TryGetValue<long>(out var l) ? l
        : value.TryGetValue<decimal>(out var d) ? d
        : decimal.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);
}
