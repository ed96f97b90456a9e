using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>Environments: expiry, sleep and wake, activity and health.</summary>
public sealed partial class EnvironmentService
{
    /// <summary>
    /// Moves an environment's expiry later by <paramref name="by"/> (from now, if it has passed), within its class's
    /// cap counted from now; the namespaces' annotations follow. Someone else's needs <paramref name="force"/>.
    /// </summary>
    public async Task<EnvironmentRecord> ExtendAsync(string name, TimeSpan by, string actor, bool force, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        if (record.Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {record.Owner}; to extend it as {actor}, add --force (recorded)");
        }

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
            replicas[$"{dc}/{ns}/{deployment.Kube.Name}"] = (int)(JsonNumbers.Long(deployment["spec"]?["replicas"]) ?? 1);
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
            foreach (var group in AllNamespaces(record))
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
            FieldManager,
            cancellationToken);
        return patched.Kube.Generation;
    }

    /// <summary>
    /// When anyone last did something with an environment: its create, a change of its record (expiry warnings
    /// aside), a change of its dynamic state, or a deploy into it.
    /// </summary>
    public async Task<DateTimeOffset> LastActivityAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var last = record.CreatedAt;
        foreach (var entry in await Records.HistoryAsync(record.Name, cancellationToken))
        {
            if (!entry.What.StartsWith("warn", StringComparison.Ordinal) && entry.What != RefreshOfFollowers && entry.At > last)
            {
                last = entry.At;
            }
        }

        foreach (var entry in await State(record).HistoryAsync(cancellationToken))
        {
            last = entry.Stamp.At > last ? entry.Stamp.At : last;
        }

        var (plans, _) = await store.ListAsync(EnvironmentScope.Project(model, record.Name) + "/deploys/", cancellationToken);
        foreach (var plan in plans)
        {
            if (JsonNode.Parse(plan.Value)?["finished"]?.GetValue<string>() is { } finished
                && DateTimeOffset.TryParse(finished, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at) && at > last)
            {
                last = at;
            }
        }

        return last;
    }

    /// <summary>How ready an environment is: ready replicas of its Deployments over the replicas they want.</summary>
    public async Task<(int Ready, int Desired)> HealthAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        var (ready, desired) = (0, 0);
        foreach (var (_, _, deployment) in await DeploymentsAsync(record, cancellationToken))
        {
            desired += (int)(JsonNumbers.Long(deployment["spec"]?["replicas"]) ?? 1);
            ready += (int)(Core.Kubernetes.JsonNumbers.Long(deployment["status"]?["readyReplicas"]) ?? 0);
        }

        return (ready, desired);
    }
}
