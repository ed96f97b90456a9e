using Capstan.Core.Rendering;
using Capstan.LocalCluster;
using Capstan.State.Etcd;

namespace Capstan.Deploy.Tests;

/// <summary>A deploy that loses its lock (its lease lapses while etcd is frozen) stops before its next write.</summary>
public sealed class LockFencingTests : IAsyncLifetime
{
    private readonly EtcdServer _etcd = new();

    public Task InitializeAsync() => _etcd.InitializeAsync();

    public Task DisposeAsync() => _etcd.DisposeAsync();

    [Fact(Timeout = 180_000)]
    public async Task A_deploy_whose_lease_lapses_stops_and_a_waiting_deploy_takes_the_lock()
    {
        await using var farm = await FarmHarness.StartAsync();
        await using var store = new EtcdStateStore([_etcd.Endpoint], "/fencing", new EtcdOptions { RequestTimeout = TimeSpan.FromSeconds(1), Rounds = 1 });
        var service = new DeployService(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters, store, TimeProvider.System);
        var debug = new RenderSelection("eqiad", "mw-debug");
        var options = new ExecutorOptions { Actor = "first", Reason = "test", LockTtl = TimeSpan.FromSeconds(3) };
        var first = await service.PrepareAsync(new DeployRequest(debug, false, false, 20, options), farm.State, default);
        Assert.True((await service.RunAsync(first.Plan, options, new EventLog(), default)).Succeeded);

        // A rollout that waits a long time (new pods start after a minute), then etcd freezes past the lock's TTL.
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.PodFault(
            FaultInjector.PodFaultKind.Slow, "mw-debug", LocalCluster.Store.LabelQuery.Parse("release=pinkunicorn"), "release=pinkunicorn", TimeSpan.FromMinutes(1)));
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        service = new DeployService(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters, store, TimeProvider.System);
        var second = await service.PrepareAsync(new DeployRequest(new RenderSelection("eqiad", "mw-debug", "pinkunicorn"), true, false, 20, options), farm.State, default);
        var events = new EventLog();
        var running = service.RunAsync(second.Plan, options, events, default);
        await Cluster.EventuallyAsync(() => Task.FromResult(events.Events.Any(e => e.Message.StartsWith("waiting ", StringComparison.Ordinal)) ? "waiting" : null), "the rollout being waited for", 60);

        _etcd.Pause();
        try
        {
            var lost = await Assert.ThrowsAsync<DeployLockLostException>(() => running);
            Assert.StartsWith("the deploy lock was lost: no keep-alive succeeded for ", lost.Message, StringComparison.Ordinal);
            Assert.EndsWith("the deploy stopped before its next write. Run it again: it continues from what the clusters hold", lost.Message, StringComparison.Ordinal);
        }
        finally
        {
            _etcd.Resume();
        }

        // Once etcd has let the lapsed lease go, another deploy takes the lock.
        var taken = await Cluster.EventuallyAsync(async () =>
        {
            try
            {
                return await DeployLock.AcquireAsync(store, farm.Model.Project, "second", "after the first lost its lock", default, ttl: TimeSpan.FromSeconds(3));
            }
            catch (Exception ex) when (ex is DeployLockedException or State.StateStoreException)
            {
                return null;
            }
        }, "the lock, free again", 60);
        await taken.DisposeAsync();
    }
}
