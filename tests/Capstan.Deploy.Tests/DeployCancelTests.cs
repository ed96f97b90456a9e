using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

/// <summary>Cancelling a running deploy: no release starts after the request, the one rolling out finishes, nothing is rolled back, and the same deploy again continues.</summary>
public sealed class DeployCancelTests
{
    [Fact(Timeout = 180_000)]
    public async Task A_cancelled_deploy_finishes_what_runs_starts_nothing_more_and_running_it_again_continues()
    {
        await using var farm = await FarmHarness.StartAsync();
        var eqiad = new RenderSelection("eqiad", "mw-web");
        Assert.True((await farm.DeployAsync(eqiad, includeNeeds: true)).Result!.Succeeded);

        // A new image for every MediaWiki release; the canary (the first stage here) is slow to become ready.
        const string next = "images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-27-101500-publish\n";
        farm.Write("deploy/images/default.yaml", next);
        farm.Write("deploy/images/mw-web/canary.yaml", next);
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.PodFault(
            FaultInjector.PodFaultKind.Slow, "mw-web", LocalCluster.Store.LabelQuery.Parse("release=canary"), "release=canary", TimeSpan.FromSeconds(3)));
        var service = farm.Service();
        var options = new ExecutorOptions { Actor = "carol", Reason = "next branch" };
        var prepared = await service.PrepareAsync(new DeployRequest(eqiad, false, false, 20, options), farm.State, default);
        var later = prepared.Plan.Actions.Where(a => a.Change != ReleaseChange.NoOp && a.Stage > Stage.Canaries).Select(a => a.Id).ToList();
        Assert.NotEmpty(later);

        var events = new EventLog();
        var running = service.RunAsync(prepared.Plan, options, events, default);
        await Cluster.EventuallyAsync(() => Task.FromResult(events.Events.Any(e => e.Release?.Release == "canary" && e.State == ReleaseState.Waiting) ? "waiting" : null), "the canary's rollout", 60);
        var request = await DeployCancel.RequestAsync(farm.Store, farm.Model.Project, "dora", "wrong branch", TimeProvider.System, default);
        Assert.Equal(prepared.Plan.Id, request.PlanId);

        var result = await running;
        Assert.False(result.Succeeded);
        Assert.Equal("dora", result.Cancelled?.Actor);
        var outcomes = result.Releases.ToDictionary(r => r.Id);
        Assert.Equal(ReleaseState.Done, outcomes[new ReleaseId("eqiad", "mw-web", "canary")].State);
        Assert.All(later, id => Assert.Equal(ReleaseState.NotStarted, outcomes[id].State));
        Assert.DoesNotContain(result.Releases, r => r.State is ReleaseState.RolledBack or ReleaseState.Failed);
        Assert.StartsWith("cancelled by dora: wrong branch", outcomes[later[0]].Detail, StringComparison.Ordinal);
        Assert.Contains("run the same deploy again to continue", result.Cause, StringComparison.Ordinal);

        // The plan's record says who cancelled; the request is gone, so it cannot stop a later deploy.
        var record = (await DeployProgress.FinishedAsync(farm.Store, farm.Model.Project, 1, default))[0];
        Assert.Equal("wrong branch", record["cancelled"]?["reason"]?.GetValue<string>());
        Assert.Null(await farm.Store.GetAsync(DeployCancel.Key(farm.Model.Project), default));
        await Assert.ThrowsAsync<Core.Diagnostics.UserInputException>(() => DeployCancel.RequestAsync(farm.Store, farm.Model.Project, "dora", "again", TimeProvider.System, default));

        // The same deploy again: the canary is done, the rest goes out.
        var again = await farm.Service().PrepareAsync(new DeployRequest(eqiad, false, false, 20, options), farm.State, default);
        Assert.Equal(ReleaseChange.NoOp, again.Plan.Actions.Single(a => a.Id.Release == "canary").Change);
        Assert.All(later, id => Assert.NotEqual(ReleaseChange.NoOp, again.Plan.Actions.Single(a => a.Id == id).Change));
        Assert.True((await farm.Service().RunAsync(again.Plan, options, new EventLog(), default)).Succeeded);
    }
}
