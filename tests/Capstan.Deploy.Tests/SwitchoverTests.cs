using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.State;

namespace Capstan.Deploy.Tests;

public sealed class SwitchoverTests
{
    private static readonly string[] Namespaces = ["mw-cron", "mw-script", "mw-jobrunner"];

    [Fact]
    public async Task A_switchover_moves_maintenance_to_the_new_primary_and_restarts_the_old_job_runners()
    {
        await using var farm = await StartAsync();
        var runbook = Runbook(farm, out var state);
        var generationsBefore = await JobRunnerGenerationsAsync(farm, "eqiad");

        var journal = await runbook.RunAsync(Request("eqiad", "codfw"), default);

        Assert.True(journal.Complete);
        Assert.All(journal.Steps, s => Assert.Equal(StepStatus.Done, s.Status));
        Assert.Equal(Switchover.Steps.Select(s => s.Name), journal.Steps.Select(s => s.Name));
        var after = await state.ReadRequiredAsync(default);
        Assert.Equal("codfw", after.PrimaryDc);
        Assert.False(after.IsReadOnly("eqiad"));
        Assert.False(after.IsReadOnly("codfw"));
        Assert.True(after.MaintenanceEnabled);
        Assert.Equal(6, await CountAsync(farm, "codfw", "CronJob", "mw-cron"));
        Assert.Equal(0, await CountAsync(farm, "eqiad", "CronJob", "mw-cron"));
        Assert.Null(await DeployLock.HolderAsync(farm.Store, farm.Model.Project, default));
        Assert.True(journal.ReadOnlyWindow > TimeSpan.Zero);
        Assert.True(journal.Total >= journal.ReadOnlyWindow);

        // The old primary's job runners were restarted (a new generation carrying the restart stamp), and are rolled out.
        var generationsAfter = await JobRunnerGenerationsAsync(farm, "eqiad");
        Assert.Equal(generationsBefore.Keys, generationsAfter.Keys);
        Assert.All(generationsBefore, kv => Assert.True(generationsAfter[kv.Key] > kv.Value, kv.Key));
        foreach (var name in generationsAfter.Keys)
        {
            Assert.True((await farm.Clusters["eqiad"].GetRolloutStatusAsync("mw-jobrunner", name, default)).Done);
        }

        // The history tells the story step by step, each write attributed to the switchover.
        var history = await state.HistoryAsync(default);
        Assert.Contains(history, h => h.Stamp.Reason.Contains("switchover eqiad → codfw: stop maintenance", StringComparison.Ordinal));

        // A deploy of the cron group afterwards agrees with the clusters: nothing to do.
        var prepared = await farm.Service().PrepareAsync(new DeployRequest(new RenderSelection(Namespace: "mw-cron"), false, false, 20, new ExecutorOptions()), after, default);
        Assert.True(prepared.Plan.IsNoOp);
    }

    [Fact]
    public async Task A_live_test_runs_every_step_and_changes_nothing_observable()
    {
        await using var farm = await StartAsync();
        var runbook = Runbook(farm, out var state);
        var before = await state.ReadRequiredAsync(default);
        var cronJobs = await NamesAsync(farm, "eqiad", "CronJob", "mw-cron");
        var generations = await JobRunnerGenerationsAsync(farm, "eqiad");

        var journal = await runbook.RunAsync(Request("eqiad", "eqiad") with { LiveTest = true }, default);

        Assert.True(journal.Complete);
        Assert.Equal(StepStatus.Skipped, journal.Steps.Single(s => s.Name == "restart-jobrunners").Status);
        Assert.All(journal.Steps.Where(s => s.Name != "restart-jobrunners"), s => Assert.Equal(StepStatus.Done, s.Status));
        var after = await state.ReadRequiredAsync(default);
        Assert.Equal(StateRules.Summary(before), StateRules.Summary(after));
        Assert.Equal(cronJobs, await NamesAsync(farm, "eqiad", "CronJob", "mw-cron"));
        Assert.Empty(await NamesAsync(farm, "codfw", "CronJob", "mw-cron"));
        Assert.Equal(generations, await JobRunnerGenerationsAsync(farm, "eqiad"));
        Assert.Null(await DeployLock.HolderAsync(farm.Store, farm.Model.Project, default));
    }

    [Fact]
    public async Task An_interrupted_switchover_keeps_deploys_locked_and_resumes_at_the_step_it_stopped_in()
    {
        await using var farm = await StartAsync();
        var runbook = Runbook(farm, out var state);

        var partial = await runbook.RunAsync(Request("eqiad", "codfw") with { Until = "set-read-only" }, default);
        Assert.False(partial.Complete);
        Assert.Equal(["done", "done", "done", "pending", "pending", "pending", "pending", "pending"], partial.Steps.Select(s => s.Status.ToString().ToLowerInvariant()));
        var mid = await state.ReadRequiredAsync(default);
        Assert.True(mid.IsReadOnly("eqiad") && mid.IsReadOnly("codfw") && !mid.MaintenanceEnabled);

        // Deploys are refused meanwhile, and a new switchover is told to resume instead.
        await Assert.ThrowsAsync<DeployLockedException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-debug")));
        var again = await Assert.ThrowsAsync<UserInputException>(() => Runbook(farm, out _).RunAsync(Request("eqiad", "codfw"), default));
        Assert.Contains("--resume", again.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<UserInputException>(() => Runbook(farm, out _).ResumeAsync(Request("codfw", "eqiad"), "test", default));

        // A fresh process resumes from the journal in the state store.
        var journal = await Runbook(farm, out _).ResumeAsync(null, "someone-else", default);
        Assert.True(journal.Complete);
        Assert.Equal(partial.Id, journal.Id);
        Assert.Equal(partial.Steps.Take(3).Select(s => s.Finished), journal.Steps.Take(3).Select(s => s.Finished));
        var after = await state.ReadRequiredAsync(default);
        Assert.Equal("codfw", after.PrimaryDc);
        Assert.True(after.MaintenanceEnabled);
        Assert.Equal(6, await CountAsync(farm, "codfw", "CronJob", "mw-cron"));
        Assert.Equal(0, await CountAsync(farm, "eqiad", "CronJob", "mw-cron"));
        await Assert.ThrowsAsync<UserInputException>(() => Runbook(farm, out _).ResumeAsync(null, "test", default));
    }

    [Fact]
    public async Task A_switchover_refuses_to_start_from_a_datacenter_that_is_not_the_primary_and_writes_nothing()
    {
        await using var farm = await StartAsync();
        var runbook = Runbook(farm, out var state);
        var before = await farm.Store.GetAsync("wikifarm/state", default);
        var wrong = await Assert.ThrowsAsync<UserInputException>(() => runbook.RunAsync(Request("codfw", "eqiad"), default));
        Assert.Contains("the primary datacenter is eqiad", wrong.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<UserInputException>(() => runbook.RunAsync(Request("eqiad", "eqiad"), default));
        await Assert.ThrowsAsync<UserInputException>(() => runbook.RunAsync(Request("eqiad", "ulsfo"), default));
        Assert.Null(await Switchover.ReadJournalAsync(farm.Store, farm.Model.Project, default));
        Assert.Equal("eqiad", (await state.ReadRequiredAsync(default)).PrimaryDc);
        Assert.Null(await DeployLock.HolderAsync(farm.Store, farm.Model.Project, default));

        // The dry run describes each step without changing anything.
        var steps = await runbook.DescribeAsync(Request("eqiad", "codfw"), default);
        Assert.Equal(8, steps.Count);
        Assert.Contains("6 in eqiad", steps[1].WouldDo, StringComparison.Ordinal);
        Assert.Contains("primary_dc eqiad → codfw", steps[3].WouldDo, StringComparison.Ordinal);
        Assert.Null(await Switchover.ReadJournalAsync(farm.Store, farm.Model.Project, default));
        Assert.Equal(before!.ModRevision, (await farm.Store.GetAsync("wikifarm/state", default))!.ModRevision);
    }

    private static SwitchoverRequest Request(string from, string to) =>
        new(from, to, false, "test", "test") { JobTimeout = TimeSpan.FromSeconds(30) };

    private static Switchover Runbook(FarmHarness farm, out DynamicStateService state)
    {
        state = new DynamicStateService(farm.Store, farm.Model.Project, [.. farm.Model.DatacenterNames], TimeProvider.System);
        return new Switchover(farm.Model, state, farm.Store, farm.Service(), farm.Clusters, new EventLog(), TimeProvider.System);
    }

    private static async Task<FarmHarness> StartAsync()
    {
        var farm = await FarmHarness.StartAsync();
        var state = new DynamicStateService(farm.Store, farm.Model.Project, [.. farm.Model.DatacenterNames], TimeProvider.System);
        await state.ChangeAsync(new StateChange.Initialize(farm.State), "test", "test", false, default);
        foreach (var ns in Namespaces)
        {
            var (_, result) = await farm.DeployAsync(new RenderSelection(Namespace: ns));
            Assert.True(result!.Succeeded);
        }

        return farm;
    }

    private static async Task<int> CountAsync(FarmHarness farm, string dc, string kind, string ns) =>
        (await farm.Clusters[dc].ListAsync("batch/v1", kind, ns, null, default)).Items.Count;

    private static async Task<List<string>> NamesAsync(FarmHarness farm, string dc, string kind, string ns) =>
        [.. (await farm.Clusters[dc].ListAsync("batch/v1", kind, ns, null, default)).Items.Select(i => i["metadata"]!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal)];

    private static async Task<SortedDictionary<string, long>> JobRunnerGenerationsAsync(FarmHarness farm, string dc)
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var d in (await farm.Clusters[dc].ListAsync("apps/v1", "Deployment", "mw-jobrunner", "app.kubernetes.io/name=mediawiki", default)).Items)
        {
            result[d["metadata"]!["name"]!.GetValue<string>()] = d["metadata"]!["generation"]!.GetValue<long>();
        }

        Assert.NotEmpty(result);
        return result;
    }
}
