using Capstan.Chaos;
using Xunit.Abstractions;

namespace Capstan.Cli.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ChaosCollection
{
    public const string Name = "chaos";
}

/// <summary>
/// The short version of the chaos run (bench/chaos/run.sh runs 20 points per operation): every operation interrupted at
/// three random moments of one fixed seed, then completed as a user would, with every invariant checked. It runs alone:
/// other tests would only add noise to its timing.
/// </summary>
[Collection(ChaosCollection.Name)]
public sealed class ChaosTests(ITestOutputHelper output)
{
    private const int Seed = 20261207;

    [Fact]
    public async Task Every_operation_converges_after_faults_at_three_random_moments()
    {
        using var log = new StringWriter();
        var options = new ChaosOptions
        {
            Capstan = Path.Combine(AppContext.BaseDirectory, "capstan.dll"),
            Repo = CliRunner.ExampleFarm,
            Points = 3,
            Seed = Seed,
            Etcd = true,
            Faults = [FaultKind.Kill, FaultKind.Api, FaultKind.Etcd, FaultKind.Serve],
            Log = log,
        };

        var results = await new ChaosRun(options).RunAsync(default);

        output.WriteLine(log.ToString());
        output.WriteLine(ChaosRun.Table(results));
        Assert.Equal(Operations.All.Count * 3, results.Count);
        Assert.All(results, r => Assert.True(r.Converged, $"seed {Seed}: {r.Operation} #{r.Point} after {r.Fault} ({r.Detail}) at {r.AtSeconds:0.00} s: {string.Join("; ", r.Violations)}"));
    }

    [Theory]
    [InlineData("deploy-upgrade", "capstan diff --dc eqiad -n mw-debug exited 2")]
    [InlineData("switchover", "the primary changed 0 times (expected 1)")]
    public async Task The_invariants_find_an_operation_killed_at_once_and_never_completed(string operation, string violation)
    {
        var run = new ChaosRun(new ChaosOptions { Capstan = Path.Combine(AppContext.BaseDirectory, "capstan.dll"), Repo = CliRunner.ExampleFarm, Seed = Seed });

        var control = await run.UnrecoveredKillAsync(operation, default);

        Assert.False(control.Converged);
        Assert.Contains(control.Violations, v => v.StartsWith(violation, StringComparison.Ordinal));
    }
}
