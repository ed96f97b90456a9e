using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Deploy.Actions;
using Capstan.State;

namespace Capstan.Deploy.Tests;

/// <summary>The deploy action every front end calls: what it checks, records and writes, and in which order.</summary>
public sealed class DeployActionTests
{
    private static readonly RenderSelection Web = new("eqiad", "mw-web");

    [Theory]
    [InlineData(0, false, false, null, false, null, "--concurrency must be between 1 and 500")]
    [InlineData(20, true, true, null, false, null, "--no-pre-pull contradicts --pre-pull: give one")]
    [InlineData(20, false, true, 1_000_000L, false, null, "--no-pre-pull contradicts --pre-pull-egress: give one")]
    [InlineData(20, false, false, null, true, null, "--skip-gates needs --reason: deploying past the gates is recorded and announced with why")]
    [InlineData(20, false, false, null, false, "eqiad/mw-web/main", "--release-hold needs --reason: lifting a hold is recorded with why")]
    public void An_intent_that_contradicts_itself_or_lacks_a_reason_is_refused_before_anything_is_read(
        int concurrency, bool prePull, bool noPrePull, long? egress, bool skipGates, string? lift, string message)
    {
        var intent = new DeployIntent(Web, "tester")
        {
            Concurrency = concurrency,
            PrePull = prePull,
            NoPrePull = noPrePull,
            PrePullEgress = egress,
            SkipGates = skipGates,
            LiftHolds = lift is null ? [] : [lift],
        };

        Assert.Equal(message, Assert.Throws<UserInputException>(intent.Check).Message);
    }

    [Fact]
    public void A_hold_to_lift_must_name_a_release()
    {
        var intent = new DeployIntent(Web, "tester") { Reason = "fixed", LiftHolds = ["mw-web/main"] };

        Assert.Equal("--release-hold 'mw-web/main' is not DC/NAMESPACE/RELEASE", Assert.Throws<UserInputException>(intent.Check).Message);
    }

    [Fact]
    public void The_recorded_reason_says_when_none_was_given_what_a_bootstrap_was_of_and_which_holds_it_lifts()
    {
        Assert.Equal("no reason given", new DeployIntent(Web, "tester").RecordedReason());
        Assert.Equal("no reason given", new DeployIntent(Web, "tester") { Reason = "  " }.RecordedReason());
        Assert.Equal("bootstrap of codfw (no reason given)", new DeployIntent(new RenderSelection("codfw"), "tester") { Bootstrap = true }.RecordedReason());
        Assert.Equal(
            "T123 fixed (lifts the hold of eqiad/mw-web/canary, eqiad/mw-web/main)",
            new DeployIntent(Web, "tester") { Reason = "T123 fixed", LiftHolds = ["eqiad/mw-web/main", "eqiad/mw-web/canary"] }.RecordedReason());
    }

    [Fact(Timeout = 300_000)]
    public async Task A_fresh_farm_writes_its_seed_only_when_it_deploys_and_a_seed_is_refused_once_cron_releases_ran_with_a_state()
    {
        await using var farm = await FarmHarness.StartAsync();
        var seedWrites = 0;
        DeployAction Action(string? unwrittenSeed) => new(new DeployContext(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters, farm.Store, farm.State, TimeProvider.System)
        {
            UnwrittenSeed = unwrittenSeed,
            WriteSeedAsync = _ =>
            {
                seedWrites++;
                return Task.CompletedTask;
            },
        });
        var intent = new DeployIntent(new RenderSelection("eqiad", "mw-cron"), "tester") { IncludeNeeds = true, Reason = "first deploy" };
        var action = Action("state-seed.yaml");

        // A dry run plans and costs the pulls; it writes nothing and cannot be run.
        var dry = await action.PrepareAsync(intent with { DryRun = true }, default);
        Assert.False(dry.Plan.IsNoOp);
        Assert.NotNull(dry.PullCost);
        await Assert.ThrowsAsync<InvalidOperationException>(() => action.RunAsync(dry, new EventLog(), default));

        var proposal = await action.PrepareAsync(intent, default);
        Assert.Equal(0, seedWrites);
        Assert.Equal("first deploy", proposal.Executor.Reason);
        Assert.Equal("tester", proposal.Executor.Actor);
        var outcome = await action.RunAsync(proposal, new EventLog(), default);
        Assert.True(outcome.Result.Succeeded, outcome.Result.Cause);
        Assert.Equal(1, seedWrites);
        Assert.Empty(outcome.HoldsLifted);

        // The store looks fresh again while the cron releases run what Capstan deployed: the state vanished, and a seed
        // would undo whatever it said, so planning from one is refused.
        var refused = await Assert.ThrowsAsync<StateStoreException>(() => Action("state-seed.yaml").PrepareAsync(intent, default));
        Assert.Contains("the dynamic state existed and vanished, so it is not re-seeded from state-seed.yaml", refused.Message, StringComparison.Ordinal);

        // With the state in the store the same intent plans: nothing to do.
        Assert.True((await Action(null).PrepareAsync(intent, default)).Plan.IsNoOp);
        Assert.Equal(1, seedWrites);
    }
}
