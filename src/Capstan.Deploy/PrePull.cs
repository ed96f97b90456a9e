using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

namespace Capstan.Deploy;

/// <summary>
/// A pre-pull stopped the deploy before anything was applied: a node cannot pull an image for good, the cluster refused
/// a pull pod, or the pre-pull was interrupted (<see cref="Interrupted"/>).
/// </summary>
public sealed class PrePullException(string message, bool interrupted = false, Exception? inner = null) : CapstanException(RefusalKind.Failure, message, inner)
{
    /// <summary>True when the pre-pull was interrupted (Ctrl-C), not refused.</summary>
    public bool Interrupted { get; } = interrupted;
}

/// <summary>What a pre-pull did in one datacenter: nodes warmed, node-release pairs found warm already, nodes left cold.</summary>
public sealed record PrePullReport(string Datacenter, int Nodes, int AlreadyWarm, int NotWarmed, TimeSpan Duration);

/// <summary>
/// Warms the nodes with a plan's new images before its rollout starts, so that the rollout's pods find them there. Each
/// node gets a pod per namespace, pinned to it (<c>spec.nodeName</c>), with the images the node lacks as containers
/// that exit at once (<c>restartPolicy: Never</c>, a restricted security context), its release's tolerations, service
/// account and pull secrets, and tiny requests. A node's images are there once every container started or stopped
/// at creating itself (a kubelet creates a container only after pulling its image, so a code-only image without the
/// command counts too); its pods are then deleted. At most <see cref="PrePullSettings.NodesAtOnce"/> nodes pull at a
/// time over all datacenters, which bounds the egress of the farm's registry. An image that cannot be pulled for good
/// (not found, unauthorized) stops the deploy before anything is applied; a node that does not finish within the
/// timeout, fails to pull for another reason or turns the pod away is reported and left cold.
/// </summary>
public sealed class PrePuller(IClusters clusters, IDeployObserver observer, TimeProvider time)
{
    /// <summary>The label every pre-pull pod carries, with the plan's id.</summary>
    public const string Label = "capstan.dev/pre-pull";

    private const string FieldManager = "capstan-pre-pull";

    private static readonly string[] PullFailures = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "ImageInspectError"];

    /// <summary>Waiting reasons a kubelet gives only after the image was pulled (it pulls, then builds and starts the container).</summary>
    private static readonly string[] AfterPull = ["CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreStartHookError", "PostStartHookError", "CrashLoopBackOff"];

    /// <summary>Pull errors no retry mends: the image is not there, or the node may not read it.</summary>
    private static readonly string[] Permanent = ["not found", "manifest unknown", "unauthorized", "denied", "InvalidImageName", "ErrImageNeverPull"];

    /// <summary>Warms every datacenter of the plan at once, within one window of nodes (the registry is the farm's).</summary>
    public async Task<IReadOnlyList<PrePullReport>> RunAsync(Plan plan, PrePullSettings settings, CancellationToken cancellationToken)
    {
        if (settings.NodeBandwidth > settings.MaxEgress)
        {
            Report($"pre-pull: node-bandwidth {Rates.Describe(settings.NodeBandwidth)} is above max-egress {Rates.Describe(settings.MaxEgress)}; one node at a time may exceed it");
        }

        using var window = new SemaphoreSlim(settings.NodesAtOnce);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var warms = ImageChanges.Of(plan).GroupBy(c => c.Release.Datacenter).Select(g => WarmAsync(plan.Id, g.Key, [.. g], settings, window, stop)).ToList();
        try
        {
            return await Task.WhenAll(warms);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // The first datacenter's refusal, not another's cancellation that followed it.
            if (warms.Select(w => w.Exception?.InnerException).OfType<PrePullException>().FirstOrDefault() is { } first)
            {
                throw first;
            }

            throw;
        }
        catch (OperationCanceledException)
        {
            throw new PrePullException("interrupted during the pre-pull: nothing was applied, and its pull pods were removed", interrupted: true);
        }
    }

    private async Task<PrePullReport> WarmAsync(string planId, string dc, List<ImageChange> changes, PrePullSettings settings, SemaphoreSlim window, CancellationTokenSource stop)
    {
        var client = clusters[dc];
        var started = time.GetUtcNow();
        try
        {
            // Pods a killed deploy left behind go first.
            foreach (var ns in changes.Select(c => c.Release.Namespace).Distinct(StringComparer.Ordinal))
            {
                foreach (var pod in (await client.ListAsync("v1", "Pod", ns, Label, stop.Token)).Items)
                {
                    await client.DeleteAsync(ObjectRef.Of(pod), Propagation.Background, stop.Token);
                }
            }

            // What each node needs, per namespace: the images it does not hold yet.
            var nodeList = await ImageChanges.ListNodesAsync(client, stop.Token);
            if (nodeList is null)
            {
                Report($"pre-pull {dc}: nodes cannot be listed; warming the nodes each release runs on now, with its new images");
            }

            var work = new SortedDictionary<string, Dictionary<string, (HashSet<string> Images, JsonObject PodSpec)>>(StringComparer.Ordinal);
            var held = 0;
            foreach (var change in changes)
            {
                var nodes = await ImageChanges.NodesAsync(client, nodeList, change, stop.Token);
                foreach (var node in nodes.Nodes)
                {
                    // A node that never ran the release lacks its other images too: with the nodes' images known, it
                    // gets all those it lacks; otherwise (the nodes it runs on now) the new ones.
                    var missing = (nodes.FromPods ? change.NewImages : change.Images).Where(i => !ImageChanges.Holds(nodes.Held.GetValueOrDefault(node), i)).ToList();
                    if (missing.Count == 0)
                    {
                        held++;
                        continue;
                    }

                    var perNode = work.TryGetValue(node, out var n) ? n : work[node] = new(StringComparer.Ordinal);
                    var entry = perNode.TryGetValue(change.Release.Namespace, out var known)
                        ? (known.Images, Merge(known.PodSpec, change.PodSpec))
                        : ([], change.PodSpec);
                    entry.Images.UnionWith(missing);
                    perNode[change.Release.Namespace] = entry;
                }
            }

            var images = work.Values.SelectMany(n => n.Values).SelectMany(e => e.Images).Distinct(StringComparer.Ordinal).ToList();
            var fresh = changes.SelectMany(c => c.NewImages).Distinct(StringComparer.Ordinal).Count(images.Contains);
            Report($"pre-pull {dc}: {work.Count} nodes to warm with {images.Count} images ({fresh} new), {settings.NodesAtOnce} at a time " +
                   $"(registry egress at most {Rates.Describe((double)settings.NodesAtOnce * settings.NodeBandwidth)})");
            var cold = new List<string>();
            if (work.Count > 0)
            {
                var progress = new Progress(work.Count, count => Report($"pre-pull {dc}: {count}/{work.Count} nodes done"));
                await using var watcher = new RolloutWatcher(client, time) { LabelSelectors = new Dictionary<(string, string), string> { [("v1", "Pod")] = Label } };
                await Task.WhenAll(work.Select(kv => WarmNodeAsync(client, watcher, planId, dc, kv.Key, kv.Value, settings, window, stop, cold, progress)));
            }

            if (cold.Count > 0)
            {
                Report($"pre-pull {dc}: {cold.Count} nodes left cold: {string.Join(", ", cold.Take(5))}{(cold.Count > 5 ? ", …" : string.Empty)}");
            }

            var took = time.GetUtcNow() - started;
            Report($"pre-pull {dc}: {work.Count - cold.Count} nodes warmed in {took.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
            return new PrePullReport(dc, work.Count, held, cold.Count, took);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not PrePullException)
        {
            await stop.CancelAsync();
            throw new PrePullException(Refusal(dc, ex), inner: ex);
        }
        catch (PrePullException)
        {
            await stop.CancelAsync();
            throw;
        }
    }

    /// <summary>One node: its pull pods, waited for until its images are there, then deleted (on every outcome).</summary>
    private async Task WarmNodeAsync(
        IClusterClient client, RolloutWatcher watcher, string planId, string dc, string node, Dictionary<string, (HashSet<string> Images, JsonObject PodSpec)> needs,
        PrePullSettings settings, SemaphoreSlim window, CancellationTokenSource stop, List<string> cold, Progress progress)
    {
        await window.WaitAsync(stop.Token);
        var applied = new List<JsonObject>();
        try
        {
            var pods = needs.Select(kv => PullPod(planId, node, kv.Key, kv.Value.Images, kv.Value.PodSpec, settings.Timeout)).ToList();
            foreach (var pod in pods)
            {
                applied.Add(pod);
                await client.ApplyAsync(pod, FieldManager, stop.Token);
            }

            var since = time.GetUtcNow();
            foreach (var pod in pods)
            {
                var name = pod.Kube.Name;
                var outcome = await watcher.WaitAsync(pod.Kube.Namespace!, [("v1", "Pod")], view => Judge(view.Get("v1", "Pod", name), since, settings.Timeout), new WaitLimits(), null, stop.Token);
                if (outcome.Failure is { } why)
                {
                    throw new PrePullException($"pre-pull: node {node} in {dc} cannot pull {why}; nothing was applied");
                }

                if (outcome.Cold is { } cause)
                {
                    lock (cold)
                    {
                        cold.Add($"{node} ({cause})");
                    }

                    break;
                }
            }

            progress.Done();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The first failure stops every other node at once, in every datacenter.
            await stop.CancelAsync();
            if (ex is PrePullException)
            {
                throw;
            }

            throw new PrePullException(Refusal(dc, ex), inner: ex);
        }
        finally
        {
            // Its pods go before its share of the egress is free: a node left cold may still be pulling.
            await DeleteAsync(client, applied);
            window.Release();
        }
    }

    /// <summary>
    /// What one pull pod for several releases of a namespace needs of their templates: all their tolerations and pull
    /// secrets (each release's images may need its own), and the first one's service account.
    /// </summary>
    private static JsonObject Merge(JsonObject a, JsonObject b)
    {
        var merged = new JsonObject();
        foreach (var key in new[] { "tolerations", "imagePullSecrets" })
        {
            var items = (a[key] as JsonArray ?? []).Concat(b[key] as JsonArray ?? []).OfType<JsonNode>()
                .DistinctBy(i => i.ToJsonString(), StringComparer.Ordinal).Select(i => i.DeepClone()).ToArray();
            if (items.Length > 0)
            {
                merged[key] = new JsonArray(items);
            }
        }

        if ((a["serviceAccountName"] ?? b["serviceAccountName"]) is { } account)
        {
            merged["serviceAccountName"] = account.DeepClone();
        }

        return merged;
    }

    /// <summary>Deletes pull pods, at once, whatever else failed (a pod left behind is removed by the next pre-pull, or ends at its deadline).</summary>
    private static async Task DeleteAsync(IClusterClient client, IEnumerable<JsonObject> pods)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Task.WhenAll(pods.Select(async pod =>
        {
            try
            {
                await client.DeleteAsync(ObjectRef.Of(pod), Propagation.Background, limit.Token);
            }
            catch (Exception ex) when (ex is KubeApiException or KubeUnavailableException or OperationCanceledException or HttpRequestException)
            {
            }
        }));
    }

    /// <summary>A failure of the cluster during the pre-pull, in words that say what to do.</summary>
    private static string Refusal(string dc, Exception ex) => ex switch
    {
        KubeForbiddenException => $"pre-pull: {dc} refused a pull pod ({ex.Message}); if it names a missing permission, grant create and patch on pods (as examples/rbac/deployer.yaml does), or deploy with --no-pre-pull; nothing was applied",
        KubeApiException => $"pre-pull: {dc} refused a pull pod: {ex.Message}; deploy with --no-pre-pull to skip it; nothing was applied",
        _ => $"pre-pull: {dc}: {ex.Message}; nothing was applied",
    };

    /// <summary>
    /// Where a pull pod stands: its images there (every container started, ended, or stopped at creating itself after
    /// the pull), failed to pull for good, or left cold; null while it goes on.
    /// </summary>
    private PullOutcome? Judge(JsonObject? pod, DateTimeOffset since, TimeSpan timeout)
    {
        // A pod that ended before its containers ran (past its deadline, evicted, turned away) pulled nothing for sure.
        if (pod?["status"]?["phase"]?.GetValue<string>() == "Failed" && pod["status"]?["reason"]?.GetValue<string>() is { } ended)
        {
            return new PullOutcome(null, "the pod ended: " + ended);
        }

        var statuses = (pod?["status"]?["containerStatuses"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var pulled = statuses.Count > 0;
        foreach (var status in statuses)
        {
            var reason = status["state"]?["waiting"]?["reason"]?.GetValue<string>();
            if (reason is not null && PullFailures.Contains(reason))
            {
                var message = status["state"]!["waiting"]!["message"]?.GetValue<string>();
                var what = $"{status["image"]?.GetValue<string>()}: {reason}{(message is null ? string.Empty : ": " + message)}";
                return Permanent.Any(p => what.Contains(p, StringComparison.OrdinalIgnoreCase)) ? new PullOutcome(what, null) : new PullOutcome(null, what);
            }

            // Its image is there once the container runs, ran, or stopped at a step that comes after the pull.
            pulled &= status["state"]?["running"] is not null
                      || (status["state"]?["terminated"] is JsonObject terminated && terminated["reason"]?.GetValue<string>() != "ContainerStatusUnknown")
                      || (reason is not null && AfterPull.Contains(reason));
        }

        if (pulled)
        {
            return PullOutcome.Warm;
        }

        if (pod?["status"]?["phase"]?.GetValue<string>() is "Failed" or "Succeeded")
        {
            return new PullOutcome(null, "the pod ended without running its containers");
        }

        return time.GetUtcNow() - since > timeout ? new PullOutcome(null, $"not done in {timeout.TotalMinutes:0} min") : null;
    }

    /// <summary>The pod that pulls a namespace's images onto one node and exits.</summary>
    internal static JsonObject PullPod(string planId, string node, string ns, IEnumerable<string> images, JsonObject template, TimeSpan timeout)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(node)))[..10];
        var containers = new JsonArray();
        foreach (var (image, i) in images.Order(StringComparer.Ordinal).Select((image, i) => (image, i)))
        {
            containers.Add(new JsonObject
            {
                ["name"] = $"pull-{i}",
                ["image"] = image,
                ["imagePullPolicy"] = "IfNotPresent",
                ["command"] = new JsonArray("/bin/true"),
                ["resources"] = new JsonObject
                {
                    ["requests"] = new JsonObject { ["cpu"] = "1m", ["memory"] = "8Mi" },
                    ["limits"] = new JsonObject { ["cpu"] = "10m", ["memory"] = "16Mi" },
                },
                ["securityContext"] = new JsonObject
                {
                    ["allowPrivilegeEscalation"] = false,
                    ["capabilities"] = new JsonObject { ["drop"] = new JsonArray("ALL") },
                },
            });
        }

        var spec = new JsonObject
        {
            ["nodeName"] = node,
            ["restartPolicy"] = "Never",
            ["automountServiceAccountToken"] = false,
            ["enableServiceLinks"] = false,
            ["terminationGracePeriodSeconds"] = 0,
            // The kubelet ends a pod a killed deploy left behind by itself.
            ["activeDeadlineSeconds"] = (long)timeout.TotalSeconds + 60,
            ["securityContext"] = new JsonObject
            {
                ["runAsNonRoot"] = true,
                ["runAsUser"] = 65534,
                ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" },
            },
            ["containers"] = containers,
        };
        foreach (var key in new[] { "tolerations", "imagePullSecrets", "serviceAccountName" })
        {
            if (template[key] is { } value)
            {
                spec[key] = value.DeepClone();
            }
        }

        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"capstan-pre-pull-{planId[Math.Max(0, planId.Length - 6)..].ToLowerInvariant()}-{hash}",
                ["namespace"] = ns,
                ["labels"] = new JsonObject { [Label] = planId, ["app.kubernetes.io/managed-by"] = "capstan" },
            },
            ["spec"] = spec,
        };
    }

    private void Report(string message) => observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null, message));

    private sealed record PullOutcome(string? Failure, string? Cold)
    {
        public static readonly PullOutcome Warm = new(null, null);
    }

    /// <summary>Counts nodes done and reports at every tenth of them.</summary>
    private sealed class Progress(int total, Action<int> report)
    {
        private readonly Lock _lock = new();
        private int _done;
        private int _reported;

        public void Done()
        {
            lock (_lock)
            {
                _done++;
                if (_done * 10 / total > _reported)
                {
                    _reported = _done * 10 / total;
                    report(_done);
                }
            }
        }
    }
}
