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

    /// <summary>The dry-run results by release and object key (<see cref="LiveRelease.Key"/>).</summary>
    public static async Task<Dictionary<ReleaseId, IReadOnlyDictionary<string, JsonObject>>> JudgeAsync(
        IClusterClient client,
        IEnumerable<RenderedRelease> desired,
        IReadOnlyDictionary<ReleaseId, LiveRelease> live,
        CancellationToken cancellationToken)
    {
        var work = new List<(ReleaseId Id, string Key, JsonObject Desired)>();
        foreach (var release in desired)
        {
            var id = new ReleaseId(release.Datacenter, release.Namespace, release.Release);
            if (live.GetValueOrDefault(id) is not { } current)
            {
                continue;
            }

            var lastApplied = Planner.LastApplied(current);
            foreach (var obj in release.Objects.Select(KubeSerializer.ToNode))
            {
                var key = obj.Kube.Key;
                if (current.Objects.GetValueOrDefault(key) is { } liveObj && ObjectComparison.NeedsServer(obj, liveObj, lastApplied.GetValueOrDefault(key), current.LastRecord?.At))
                {
                    work.Add((id, key, obj));
                }
            }
        }

        var results = new (ReleaseId Id, string Key, JsonObject? Result)[work.Count];
        using var gate = new SemaphoreSlim(Parallelism);
        await Task.WhenAll(work.Select(async (item, i) =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                results[i] = (item.Id, item.Key, await client.ApplyAsync(item.Desired, force: false, dryRun: true, cancellationToken));
            }
            catch (Exception ex) when (ex is KubeConflictException or KubeForbiddenException or KubeInvalidException)
            {
                // No verdict for this object: another manager owns a field it sets, the user may not patch it (a
                // read-only diff), or the server refuses it (an immutable field). The plan falls back to comparing
                // fields and marks it for update if any differs; the apply then reports the same error for this
                // release alone, not for the whole plan.
                results[i] = (item.Id, item.Key, null);
            }
            finally
            {
                gate.Release();
            }
        }));

        var verdicts = new Dictionary<ReleaseId, IReadOnlyDictionary<string, JsonObject>>();
        foreach (var group in results.Where(r => r.Result is not null).GroupBy(r => r.Id))
        {
            verdicts[group.Key] = group.ToDictionary(r => r.Key, r => r.Result!, StringComparer.Ordinal);
        }

        return verdicts;
    }
}
