using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

namespace Capstan.Deploy;

/// <summary>
/// Images a deploy brings to a release: those its new pod template runs that the live one does not, and all those it
/// runs, with the template they come in (for its tolerations, node selector and pull secrets).
/// </summary>
public sealed record ImageChange(ReleaseId Release, IReadOnlyList<string> OldImages, IReadOnlyList<string> NewImages, IReadOnlyList<string> Images, JsonObject PodSpec, JsonObject? Live);

/// <summary>The nodes of a datacenter a release's new images go to.</summary>
public sealed record ImageNodes(IReadOnlyList<string> Nodes, IReadOnlyDictionary<string, IReadOnlySet<string>> Held, bool FromPods);

/// <summary>Which images a plan changes, and on which nodes they will run.</summary>
public static class ImageChanges
{
    /// <summary>The Deployments a plan changes whose pods will run images their live pods do not.</summary>
    public static IReadOnlyList<ImageChange> Of(Plan plan)
    {
        var changes = new List<ImageChange>();
        foreach (var action in plan.Actions.Where(a => a.Change != ReleaseChange.NoOp))
        {
            foreach (var change in action.Apply.Where(c => c.Kind == "Deployment"))
            {
                if (change.Desired["spec"]?["template"]?["spec"] is not JsonObject spec)
                {
                    continue;
                }

                var old = Images(change.Live?["spec"]?["template"]?["spec"] as JsonObject);
                var all = Images(spec);
                var fresh = all.Where(i => !old.Contains(i, StringComparer.Ordinal)).ToList();
                if (fresh.Count > 0)
                {
                    changes.Add(new ImageChange(action.Id, old, fresh, all, spec, change.Live));
                }
            }
        }

        return changes;
    }

    /// <summary>
    /// The nodes a release's pods may run on, as a DaemonSet with its pod template would cover them: Ready,
    /// schedulable, matching its node selector and tolerating the nodes' taints, with the images each already holds
    /// (<c>status.images</c>). When nodes cannot be listed (a deployer without cluster-wide read), the nodes its pods
    /// run on now.
    /// </summary>
    public static async Task<ImageNodes> NodesAsync(IClusterClient client, ImageChange change, CancellationToken cancellationToken)
    {
        try
        {
            var nodes = (await client.ListAsync("v1", "Node", null, null, cancellationToken)).Items;
            var selector = change.PodSpec["nodeSelector"] as JsonObject;
            var tolerations = change.PodSpec["tolerations"] as JsonArray;
            var eligible = nodes.Where(n =>
                    n["spec"]?["unschedulable"]?.GetValue<bool>() != true
                    && (n["status"]?["conditions"] as JsonArray ?? []).Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True")
                    && (selector ?? []).All(kv => n["metadata"]?["labels"]?[kv.Key]?.GetValue<string>() == kv.Value?.GetValue<string>())
                    && Taints.Admits(n, tolerations))
                .ToList();
            return new ImageNodes(
                [.. eligible.Select(Name)],
                eligible.ToDictionary(Name, n => (IReadOnlySet<string>)(n["status"]?["images"] as JsonArray ?? [])
                    .SelectMany(i => i?["names"] as JsonArray ?? []).Select(x => x!.GetValue<string>()).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal),
                FromPods: false);
        }
        catch (KubeForbiddenException)
        {
            var labels = change.Live?["spec"]?["selector"]?["matchLabels"] as JsonObject;
            if (labels is null || labels.Count == 0)
            {
                return new ImageNodes([], new Dictionary<string, IReadOnlySet<string>>(), FromPods: true);
            }

            var pods = await client.ListAsync("v1", "Pod", change.Release.Namespace, string.Join(",", labels.Select(kv => $"{kv.Key}={kv.Value}")), cancellationToken);
            return new ImageNodes(
                [.. pods.Items.Select(p => p["spec"]?["nodeName"]?.GetValue<string>()).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
                new Dictionary<string, IReadOnlySet<string>>(),
                FromPods: true);
        }
    }

    /// <summary>
    /// True when a node's image names (<c>status.images[].names</c>) include the image: the reference as written, or for
    /// one pinned by digest (<c>repo:tag@sha256:…</c>) the name <c>repo@sha256:…</c> a container runtime reports.
    /// </summary>
    public static bool Holds(IReadOnlySet<string>? names, string image)
    {
        if (names is null || names.Count == 0)
        {
            return false;
        }

        return names.Contains(image) || (Pinned(image) is { } pinned && names.Any(n => Pinned(n) == pinned));
    }

    private static string? Pinned(string image)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var repo = image[..at];
        var slash = repo.LastIndexOf('/');
        var colon = repo.LastIndexOf(':');
        return (colon > slash ? repo[..colon] : repo) + image[at..];
    }

    private static string Name(JsonObject obj) => obj["metadata"]!["name"]!.GetValue<string>();

    private static List<string> Images(JsonObject? spec) =>
        [.. (spec?["containers"] as JsonArray ?? []).Concat(spec?["initContainers"] as JsonArray ?? [])
            .Select(c => c?["image"]?.GetValue<string>()).OfType<string>().Distinct(StringComparer.Ordinal)];
}

/// <summary>A pre-pull found that a node cannot pull an image; nothing of the plan was applied.</summary>
public sealed class PrePullException(string message) : Exception(message);

/// <summary>What a pre-pull did in one datacenter.</summary>
public sealed record PrePullReport(string Datacenter, int Nodes, int AlreadyWarm, int NotWarmed, TimeSpan Duration);

/// <summary>
/// Warms the nodes with a plan's new images before its rollout starts, so that the rollout's pods find them there. Each
/// node gets a pod per namespace, pinned to it (<c>spec.nodeName</c>), with the namespace's new images as containers
/// that exit at once (<c>restartPolicy: Never</c>), its release's tolerations and pull secrets, and tiny requests. A
/// node is warm once every container has run: a kubelet creates a container only after pulling its image, so even an
/// image without the command (a code-only image) counts, its container ending in a start error after the pull. At most
/// <see cref="PrePullSettings.NodesAtOnce"/> nodes pull at a time, which bounds the registry's egress. An image a node
/// cannot pull stops the deploy before anything is applied; a node that does not finish within the timeout, or turns
/// the pod away, is reported and left cold.
/// </summary>
public sealed class PrePuller(IClusters clusters, IDeployObserver observer, TimeProvider time)
{
    /// <summary>The label every pre-pull pod carries, with the plan's id.</summary>
    public const string Label = "capstan.dev/pre-pull";

    private const string FieldManager = "capstan-pre-pull";

    private static readonly string[] PullFailures = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"];

    /// <summary>Warms every datacenter of the plan at once (their registries and nodes are their own).</summary>
    public async Task<IReadOnlyList<PrePullReport>> RunAsync(Plan plan, PrePullSettings settings, CancellationToken cancellationToken)
    {
        var changes = ImageChanges.Of(plan);
        return await Task.WhenAll(changes.GroupBy(c => c.Release.Datacenter).Select(g => WarmAsync(plan.Id, g.Key, [.. g], settings, cancellationToken)));
    }

    private async Task<PrePullReport> WarmAsync(string planId, string dc, List<ImageChange> changes, PrePullSettings settings, CancellationToken cancellationToken)
    {
        var client = clusters[dc];
        var started = time.GetUtcNow();

        // What each node needs, per namespace: the new images it does not hold yet.
        var work = new SortedDictionary<string, Dictionary<string, (HashSet<string> Images, JsonObject PodSpec)>>(StringComparer.Ordinal);
        var held = 0;
        foreach (var change in changes)
        {
            var nodes = await ImageChanges.NodesAsync(client, change, cancellationToken);
            if (nodes.FromPods)
            {
                Report($"pre-pull {dc}: nodes cannot be listed; warming the {nodes.Nodes.Count} nodes {change.Release} runs on now");
            }

            foreach (var node in nodes.Nodes)
            {
                // A node that never ran the release lacks its other images too: with the nodes' images known, it gets
                // all those it lacks; otherwise (the nodes it runs on now) the new ones.
                var missing = (nodes.FromPods ? change.NewImages : change.Images).Where(i => !ImageChanges.Holds(nodes.Held.GetValueOrDefault(node), i)).ToList();
                if (missing.Count == 0)
                {
                    held++;
                    continue;
                }

                var perNode = work.TryGetValue(node, out var n) ? n : work[node] = new(StringComparer.Ordinal);
                if (!perNode.TryGetValue(change.Release.Namespace, out var entry))
                {
                    entry = ([], change.PodSpec);
                    perNode[change.Release.Namespace] = entry;
                }

                entry.Images.UnionWith(missing);
            }
        }

        var images = work.Values.SelectMany(n => n.Values).SelectMany(e => e.Images).Distinct(StringComparer.Ordinal).ToList();
        var fresh = changes.SelectMany(c => c.NewImages).Distinct(StringComparer.Ordinal).Count(images.Contains);
        Report($"pre-pull {dc}: {work.Count} nodes to warm with {images.Count} images ({fresh} new), {settings.NodesAtOnce} at a time " +
               $"(registry egress at most {Rates.Describe((double)settings.NodesAtOnce * settings.NodeBandwidth)})");
        if (work.Count == 0)
        {
            return new PrePullReport(dc, 0, held, 0, time.GetUtcNow() - started);
        }

        await using var watcher = new RolloutWatcher(client, time) { LabelSelectors = new Dictionary<(string, string), string> { [("v1", "Pod")] = Label } };
        foreach (var ns in work.Values.SelectMany(n => n.Keys).Distinct(StringComparer.Ordinal))
        {
            await DeleteLeftoversAsync(client, ns, cancellationToken);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var window = new SemaphoreSlim(settings.NodesAtOnce);
        var created = new List<ObjectRef>();
        var done = 0;
        var cold = new List<string>();
        PrePullException? failure = null;
        var lastReport = -1;
        async Task WarmNodeAsync(string node, Dictionary<string, (HashSet<string> Images, JsonObject PodSpec)> needs)
        {
            await window.WaitAsync(stop.Token);
            var holding = true;
            try
            {
                var pods = needs.Select(kv => PullPod(planId, node, kv.Key, kv.Value.Images, kv.Value.PodSpec)).ToList();
                foreach (var pod in pods)
                {
                    lock (created)
                    {
                        created.Add(ObjectRef.Of(pod));
                    }

                    await client.ApplyAsync(pod, FieldManager, stop.Token);
                }

                // The node's slot of the window (its share of the egress) is free once its images are there, that is
                // once every container started; ending and deleting the pods happens outside the window.
                var since = time.GetUtcNow();
                foreach (var pod in pods)
                {
                    await JudgeAsync(node, pod, since, pulledOnly: true);
                }

                window.Release();
                holding = false;
                foreach (var pod in pods)
                {
                    await JudgeAsync(node, pod, since, pulledOnly: false);
                    await client.DeleteAsync(ObjectRef.Of(pod), Propagation.Background, CancellationToken.None);
                }

                var count = Interlocked.Increment(ref done);
                var tenth = count * 10 / work.Count;
                if (tenth > Volatile.Read(ref lastReport) && Interlocked.Exchange(ref lastReport, tenth) < tenth)
                {
                    Report($"pre-pull {dc}: {count}/{work.Count} nodes warm");
                }
            }
            catch (PrePullException ex)
            {
                Interlocked.CompareExchange(ref failure, ex, null);
                await stop.CancelAsync();
            }
            finally
            {
                if (holding)
                {
                    window.Release();
                }
            }
        }

        // Waits for a pull pod to have pulled (or, after that, to have ended), and notes a node left cold once.
        async Task JudgeAsync(string node, JsonObject pod, DateTimeOffset since, bool pulledOnly)
        {
            var name = pod["metadata"]!["name"]!.GetValue<string>();
            var ns = pod["metadata"]!["namespace"]!.GetValue<string>();
            var outcome = await watcher.WaitAsync(ns, [("v1", "Pod")], view => Judge(view.Get("v1", "Pod", name), since, settings.Timeout, pulledOnly), new WaitLimits(), null, stop.Token);
            if (outcome.Failure is { } why)
            {
                throw new PrePullException($"pre-pull: node {node} in {dc} cannot pull {why}; nothing was applied");
            }

            if (outcome.Cold is { } cause && !pulledOnly)
            {
                lock (cold)
                {
                    cold.Add($"{node} ({cause})");
                }
            }
        }

        try
        {
            await Task.WhenAll(work.Select(kv => WarmNodeAsync(kv.Key, kv.Value)));
        }
        catch (OperationCanceledException) when (failure is not null && !cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            // Whatever happened, no pull pod is left behind (those already judged are gone; this takes the rest).
            foreach (var pod in created)
            {
                try
                {
                    await client.DeleteAsync(pod, Propagation.Background, CancellationToken.None);
                }
                catch (KubeApiException)
                {
                    // Best effort: the next pre-pull in the namespace removes leftovers first.
                }
            }
        }

        if (failure is not null)
        {
            throw failure;
        }

        if (cold.Count > 0)
        {
            Report($"pre-pull {dc}: {cold.Count} nodes left cold: {string.Join(", ", cold.Take(5))}{(cold.Count > 5 ? ", …" : string.Empty)}");
        }

        var took = time.GetUtcNow() - started;
        Report($"pre-pull {dc}: {work.Count - cold.Count} nodes warmed in {took.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        return new PrePullReport(dc, work.Count, held, cold.Count, took);
    }

    /// <summary>Pods of an earlier pre-pull that a killed deploy left behind.</summary>
    private static async Task DeleteLeftoversAsync(IClusterClient client, string ns, CancellationToken cancellationToken)
    {
        foreach (var pod in (await client.ListAsync("v1", "Pod", ns, Label, cancellationToken)).Items)
        {
            await client.DeleteAsync(ObjectRef.Of(pod), Propagation.Background, cancellationToken);
        }
    }

    /// <summary>
    /// Where a pull pod stands: warm (every container ran; with <paramref name="pulledOnly"/>, every container started,
    /// so its image is there), failed to pull, or left cold; null while it goes on.
    /// </summary>
    private PullOutcome? Judge(JsonObject? pod, DateTimeOffset since, TimeSpan timeout, bool pulledOnly)
    {
        var statuses = (pod?["status"]?["containerStatuses"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        foreach (var status in statuses)
        {
            if (status["state"]?["waiting"]?["reason"]?.GetValue<string>() is { } reason && PullFailures.Contains(reason))
            {
                var message = status["state"]!["waiting"]!["message"]?.GetValue<string>();
                return new PullOutcome($"{status["image"]?.GetValue<string>()}: {reason}{(message is null ? string.Empty : ": " + message)}", null);
            }
        }

        if (pulledOnly && statuses.Count > 0 && statuses.All(s => s["state"]?["running"] is not null || s["state"]?["terminated"] is not null))
        {
            return PullOutcome.Warm;
        }

        var phase = pod?["status"]?["phase"]?.GetValue<string>();
        if (phase is "Succeeded" or "Failed")
        {
            // A container that ran (even one whose command the image lacks) was pulled first; a pod the node turned
            // away (too many pods, no room) never pulled.
            return statuses.Count > 0 && statuses.All(s => s["state"]?["terminated"] is not null)
                ? PullOutcome.Warm
                : new PullOutcome(null, "the node turned the pod away: " + (pod?["status"]?["reason"]?.GetValue<string>() ?? phase));
        }

        return time.GetUtcNow() - since > timeout ? new PullOutcome(null, $"not done in {timeout.TotalMinutes:0} min") : null;
    }

    /// <summary>The pod that pulls a namespace's new images onto one node and exits.</summary>
    internal static JsonObject PullPod(string planId, string node, string ns, IEnumerable<string> images, JsonObject template)
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
            });
        }

        var spec = new JsonObject
        {
            ["nodeName"] = node,
            ["restartPolicy"] = "Never",
            ["automountServiceAccountToken"] = false,
            ["enableServiceLinks"] = false,
            ["terminationGracePeriodSeconds"] = 0,
            ["containers"] = containers,
        };
        foreach (var key in new[] { "tolerations", "imagePullSecrets" })
        {
            if (template[key] is JsonArray list)
            {
                spec[key] = list.DeepClone();
            }
        }

        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"capstan-pre-pull-{planId[^6..]}-{hash}",
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
}
