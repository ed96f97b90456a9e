using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>
/// Asks the server what an apply would do (server-side apply with <c>dryRun=All</c>), as <c>kubectl diff
/// --server-side</c> and Argo CD's server-side diff do, for every desired object that exists and that only the
/// server can judge (<see cref="ObjectComparison.NeedsServer"/>): the planner then compares the result with the live
/// object, so removed fields show and canonical forms never do. An object equal to what the last deploy applied, with
/// every field live as written, is not sent: a no-change plan costs no dry runs.
/// </summary>
public static class ServerJudge
{
    /// <summary>How many dry runs are in flight at once per cluster (the client's rate limit still applies).</summary>
    private const int Parallelism = 8;

    /// <summary>
    /// Every desired release that exists live, judged: its objects serialised once, what its last deploy applied, and
    /// per live object whether the server was asked and what it said. The planner uses these as they are.
    /// </summary>
    public static async Task<Dictionary<ReleaseId, JudgedRelease>> JudgeAsync(
        IClusterClient client,
        IEnumerable<RenderedRelease> desired,
        IReadOnlyDictionary<ReleaseId, LiveRelease> live,
        CancellationToken cancellationToken)
    {
        var judged = new Dictionary<ReleaseId, (List<JsonObject> Objects, Dictionary<string, JsonObject> LastApplied, Dictionary<string, Verdict> Verdicts)>();
        var work = new List<(ReleaseId Id, string Key, JsonObject Desired)>();
        foreach (var release in desired)
        {
            var id = new ReleaseId(release.Datacenter, release.Namespace, release.Release);
            if (live.GetValueOrDefault(id) is not { } current)
            {
                continue;
            }

            var objects = release.Objects.Select(KubeSerializer.ToNode).ToList();
            var lastApplied = Planner.LastApplied(current);
            var verdicts = new Dictionary<string, Verdict>(StringComparer.Ordinal);
            judged[id] = (objects, lastApplied, verdicts);
            foreach (var obj in objects)
            {
                var key = obj.Kube.Key;
                if (current.Objects.GetValueOrDefault(key) is not { } liveObj)
                {
                    continue;
                }

                if (ObjectComparison.NeedsServer(obj, liveObj, lastApplied.GetValueOrDefault(key), current.LastRecord?.At))
                {
                    work.Add((id, key, obj));
                }
                else
                {
                    verdicts[key] = new Verdict(VerdictKind.NotAsked);
                }
            }
        }

        var results = new Verdict[work.Count];
        using var gate = new SemaphoreSlim(Parallelism);
        await Task.WhenAll(work.Select(async (item, i) =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                results[i] = new Verdict(VerdictKind.Answered, await client.ApplyAsync(item.Desired, force: false, dryRun: true, cancellationToken));
            }
            catch (Exception ex) when (ex is KubeConflictException or KubeForbiddenException or KubeInvalidException)
            {
                // No verdict for this object: another manager owns a field it sets, the user may not patch it (a
                // read-only diff), or the server refuses it (an immutable field). The plan falls back to comparing
                // fields and marks it for update if any differs; the apply then reports the same error for this
                // release alone, not for the whole plan.
                results[i] = new Verdict(VerdictKind.NoVerdict);
            }
            finally
            {
                gate.Release();
            }
        }));

        for (var i = 0; i < work.Count; i++)
        {
            judged[work[i].Id].Verdicts[work[i].Key] = results[i];
        }

        return judged.ToDictionary(kv => kv.Key, kv => new JudgedRelease(kv.Value.Objects, kv.Value.LastApplied, kv.Value.Verdicts));
    }
}
