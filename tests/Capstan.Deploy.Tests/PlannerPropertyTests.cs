using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Planning;

namespace Capstan.Deploy.Tests;

/// <summary>
/// Properties of plans and their scheduling over many random farms (seeded, so a failure reproduces): every release
/// starts only after its needs and every earlier stage finished, and no cluster ever runs more releases than allowed.
/// </summary>
public sealed class PlannerPropertyTests
{
    private static Plan RandomPlan(Random random)
    {
        var dcs = new[] { "eqiad", "codfw" };
        var actions = new List<ReleaseAction>();
        var count = random.Next(1, 60);
        for (var i = 0; i < count; i++)
        {
            var dc = dcs[random.Next(dcs.Length)];
            var stage = (Stage)random.Next(3);
            var id = new ReleaseId(dc, $"ns{random.Next(5)}", $"r{i}");

            // Needs only point at releases of the same datacenter and an earlier or equal stage, as the loader enforces.
            var needs = actions.Where(a => a.Id.Datacenter == dc && a.Stage <= stage && random.NextDouble() < 0.15).Select(a => a.Id).ToList();
            actions.Add(new ReleaseAction(id, ReleaseKind.MediaWiki, stage, ReleaseChange.Install, [], [], [], needs, "h", null));
        }

        return new Plan("p", actions, [], random.Next(1, 6));
    }

    [Fact]
    public void Schedules_respect_needs_stages_and_the_concurrency_limit()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var plan = RandomPlan(random);
            var scheduler = new PlanScheduler(plan);
            var finishedAt = new Dictionary<ReleaseAction, int>();
            var startedAt = new Dictionary<ReleaseAction, int>();
            var running = new List<(ReleaseAction Action, int Ends)>();
            var now = 0;
            while (!scheduler.Finished)
            {
                foreach (var action in scheduler.StartNext())
                {
                    startedAt[action] = now;
                    running.Add((action, now + random.Next(1, 10)));
                }

                foreach (var dc in running.Select(r => r.Action.Id.Datacenter).Distinct())
                {
                    Assert.True(running.Count(r => r.Action.Id.Datacenter == dc) <= plan.ConcurrencyPerCluster, $"seed {seed}: concurrency exceeded in {dc}");
                }

                Assert.NotEmpty(running);
                now = running.Min(r => r.Ends);
                foreach (var done in running.Where(r => r.Ends == now).ToList())
                {
                    running.Remove(done);
                    finishedAt[done.Action] = now;
                    scheduler.Complete(done.Action, succeeded: true);
                }
            }

            Assert.Equal(plan.Actions.Count, finishedAt.Count);
            foreach (var action in plan.Actions)
            {
                foreach (var need in action.Needs)
                {
                    var needed = plan.Actions.Single(a => a.Id == need);
                    Assert.True(startedAt[action] >= finishedAt[needed], $"seed {seed}: {action.Id} started before its need {need} finished");
                }

                foreach (var earlier in plan.Actions.Where(a => a.Stage < action.Stage))
                {
                    Assert.True(startedAt[action] >= finishedAt[earlier], $"seed {seed}: {action.Id} ({action.Stage}) started before {earlier.Id} ({earlier.Stage}) finished");
                }
            }
        }
    }

    [Fact]
    public void After_a_failure_nothing_new_starts()
    {
        for (var seed = 0; seed < 100; seed++)
        {
            var random = new Random(seed);
            var plan = RandomPlan(random);
            var scheduler = new PlanScheduler(plan);
            var first = scheduler.StartNext();
            scheduler.Complete(first[0], succeeded: false);
            Assert.Empty(scheduler.StartNext());
            foreach (var other in first.Skip(1))
            {
                scheduler.Complete(other, succeeded: true);
            }

            Assert.True(scheduler.Finished);
        }
    }

    [Theory]
    [InlineData("{\"a\":1}", "{\"a\":1,\"b\":2}", null)]
    [InlineData("{\"a\":1}", "{\"a\":2}", ".a")]
    [InlineData("{\"a\":{\"b\":\"x\"}}", "{\"a\":{\"b\":\"x\",\"c\":1}}", null)]
    [InlineData("{\"l\":[{\"n\":\"x\"}]}", "{\"l\":[{\"n\":\"x\",\"d\":1}]}", null)]
    [InlineData("{\"l\":[1,2]}", "{\"l\":[1]}", ".l")]
    [InlineData("{\"n\":1}", "{\"n\":1.0}", null)]
    [InlineData("{\"s\":\"1\"}", "{\"s\":1}", ".s")]
    [InlineData("{\"m\":{}}", "{}", ".m")]
    public void Only_fields_capstan_sets_count_as_differences(string desired, string live, string? expected) =>
        Assert.Equal(expected, Planner.FirstDifference(JsonNode.Parse(desired), JsonNode.Parse(live), string.Empty));

    [Fact]
    public void Unified_diffs_show_removals_before_additions_with_context()
    {
        var diff = UnifiedDiff.Create("a\nb\nc\nd\n", "a\nb\nC\nd\n", "live", "desired");
        Assert.Equal("--- live\n+++ desired\n@@ -1,4 +1,4 @@\n a\n b\n-c\n+C\n d\n", diff);
        Assert.Equal(string.Empty, UnifiedDiff.Create("same\n", "same\n", "a", "b"));
    }
}
