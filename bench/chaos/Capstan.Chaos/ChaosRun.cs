using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Chaos;

/// <summary>The faults a run can inject at its random moment.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL of the capstan process running the operation.</summary>
    Kill,

    /// <summary>API faults: a burst of 500/503/429, added latency, connection resets, or watches cut mid-stream.</summary>
    Api,

    /// <summary>etcd frozen (SIGSTOP, then SIGCONT) or killed and restarted (with <see cref="ChaosOptions.Etcd"/>).</summary>
    Etcd,

    /// <summary>SIGKILL of a datacenter's <c>local serve</c>, started again at once.</summary>
    Serve,
}

/// <summary>What a chaos run does.</summary>
public sealed record ChaosOptions
{
    /// <summary>The CLI to run (<c>capstan.dll</c>).</summary>
    public required string Capstan { get; init; }

    /// <summary>The example farm each run copies.</summary>
    public required string Repo { get; init; }

    /// <summary>Fault points per operation.</summary>
    public int Points { get; init; } = 20;

    /// <summary>The seed of every random choice (printed; a failure replays with it).</summary>
    public int Seed { get; init; } = Environment.TickCount & 0x7fffffff;

    /// <summary>The operations to run (all when empty).</summary>
    public IReadOnlyList<string> Operations { get; init; } = [];

    /// <summary>The faults to choose from.</summary>
    public IReadOnlyList<FaultKind> Faults { get; init; } = [FaultKind.Kill, FaultKind.Api, FaultKind.Serve];

    /// <summary>Run the state store on a real etcd (started here) instead of the file store; needed for <see cref="FaultKind.Etcd"/>.</summary>
    public bool Etcd { get; init; }

    /// <summary>Where progress lines go.</summary>
    public TextWriter Log { get; init; } = TextWriter.Null;
}

/// <summary>One fault point: what was injected when, and whether the farm converged after it.</summary>
public sealed record PointResult(string Operation, int Point, FaultKind Fault, string Detail, double AtSeconds, bool Converged, double ConvergeSeconds, IReadOnlyList<string> Violations);

/// <summary>
/// Runs each operation many times on a fresh copy of the example farm; each time, at a random moment of the
/// operation, it injects one fault, then does what a user would (runs the command again, or resumes it) and checks the
/// invariants. Every choice comes from one seed, so a failing point replays.
/// </summary>
public sealed class ChaosRun(ChaosOptions options)
{
    /// <summary>Runs every point of every operation; the results in order.</summary>
    public async Task<IReadOnlyList<PointResult>> RunAsync(CancellationToken cancellationToken)
    {
        var random = new Random(options.Seed);
        var results = new List<PointResult>();
        var operations = Chaos.Operations.All.Where(o => options.Operations.Count == 0 || options.Operations.Contains(o.Name)).ToList();
        foreach (var operation in operations)
        {
            // How long the operation takes undisturbed: fault moments are drawn over that span.
            var span = await CalibrateAsync(operation, cancellationToken);
            options.Log.WriteLine($"chaos: {operation.Name}: takes {span.TotalSeconds:0.0} s undisturbed");
            for (var point = 1; point <= options.Points; point++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var fault = options.Faults[random.Next(options.Faults.Count)];
                var at = span * random.NextDouble() * 1.1;
                var result = await PointAsync(operation, point, fault, at, new Random(random.Next()), cancellationToken);
                results.Add(result);
                options.Log.WriteLine($"chaos: {operation.Name} #{point}: {fault} ({result.Detail}) at {result.AtSeconds:0.00} s: " +
                    (result.Converged ? $"converged in {result.ConvergeSeconds:0.0} s" : "NOT CONVERGED: " + string.Join("; ", result.Violations)));
            }
        }

        return results;
    }

    /// <summary>The per-operation table: runs, fault points by kind, converged, and the time to converge.</summary>
    public static string Table(IReadOnlyList<PointResult> results)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{"OPERATION",-20} {"RUNS",4} {"KILL",4} {"API",4} {"ETCD",4} {"SERVE",5} {"CONVERGED",9} {"MEDIAN S",8} {"MAX S",6}\n");
        foreach (var group in results.GroupBy(r => r.Operation))
        {
            var times = group.Where(r => r.Converged).Select(r => r.ConvergeSeconds).Order().ToList();
            sb.Append(CultureInfo.InvariantCulture,
                $"{group.Key,-20} {group.Count(),4} {Count(group, FaultKind.Kill),4} {Count(group, FaultKind.Api),4} {Count(group, FaultKind.Etcd),4} {Count(group, FaultKind.Serve),5} " +
                $"{$"{group.Count(r => r.Converged)}/{group.Count()}",9} {(times.Count > 0 ? times[times.Count / 2] : 0),8:0.0} {(times.Count > 0 ? times[^1] : 0),6:0.0}\n");
        }

        var all = results.Count;
        var converged = results.Count(r => r.Converged);
        sb.Append(CultureInfo.InvariantCulture, $"converged: {converged}/{all} ({(all == 0 ? 100 : 100.0 * converged / all):0.0} %)\n");
        return sb.ToString();
    }

    private static int Count(IEnumerable<PointResult> results, FaultKind kind) => results.Count(r => r.Fault == kind);

    private async Task<TimeSpan> CalibrateAsync(Operation operation, CancellationToken cancellationToken)
    {
        await using var farm = await NewFarmAsync(operation.Name + "-calibrate", cancellationToken);
        await operation.SetupAsync(farm);
        var watch = Stopwatch.StartNew();
        var result = await farm.RunAsync(operation.Command);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{operation.Name} fails undisturbed (exit {result.ExitCode}): {result.Err}");
        }

        return watch.Elapsed;
    }

    /// <summary>
    /// A control point: <paramref name="operationName"/> killed at once and not completed afterwards. Its invariants
    /// must find what is left undone; a check that passed here could not fail.
    /// </summary>
    public async Task<PointResult> UnrecoveredKillAsync(string operationName, CancellationToken cancellationToken) =>
        await PointAsync(Chaos.Operations.All.Single(o => o.Name == operationName), 0, FaultKind.Kill, TimeSpan.Zero, new Random(options.Seed), cancellationToken, recover: false);

    private async Task<PointResult> PointAsync(Operation operation, int point, FaultKind fault, TimeSpan at, Random random, CancellationToken cancellationToken, bool recover = true)
    {
        await using var farm = await NewFarmAsync($"{operation.Name}-{point}", cancellationToken);
        await operation.SetupAsync(farm);
        using var process = farm.Start(operation.Command);
        var started = Stopwatch.StartNew();
        var exited = process.WaitForExitAsync(cancellationToken);
        await Task.WhenAny(exited, Task.Delay(at, cancellationToken));
        var injectedAt = started.Elapsed.TotalSeconds;
        var detail = await InjectAsync(farm, process, fault, operation.Datacenters[random.Next(operation.Datacenters.Count)], random);
        await ChaosFarm.WaitAsync(process, TimeSpan.FromMinutes(3));
        await HealAsync(farm, fault);

        var recovering = Stopwatch.StartNew();
        var violations = new List<string>();
        if (recover && await operation.RecoverAsync(farm) is { } failure)
        {
            violations.Add($"the operation did not complete when run again ({failure})");
        }

        violations.AddRange(await operation.CheckAsync(farm));
        return new PointResult(operation.Name, point, fault, detail, injectedAt, violations.Count == 0, recovering.Elapsed.TotalSeconds, violations);
    }

    /// <summary>Injects the fault now; says what it did.</summary>
    private static async Task<string> InjectAsync(ChaosFarm farm, Process process, FaultKind fault, string dc, Random random)
    {
        switch (fault)
        {
            case FaultKind.Kill:
                ChaosFarm.Kill(process);
                return "SIGKILL capstan";
            case FaultKind.Api:
                var spec = random.Next(6) switch
                {
                    0 => new JsonObject { ["type"] = "http", ["status"] = 500, ["count"] = random.Next(3, 12) },
                    1 => new JsonObject { ["type"] = "http", ["status"] = 503, ["count"] = random.Next(3, 12) },
                    2 => new JsonObject { ["type"] = "http", ["status"] = 429, ["count"] = random.Next(3, 12), ["retryAfter"] = 1 },
                    3 => new JsonObject { ["type"] = "hang", ["seconds"] = random.Next(1, 4), ["count"] = random.Next(1, 4) },
                    4 => new JsonObject { ["type"] = "reset", ["count"] = random.Next(2, 8) },
                    _ => new JsonObject { ["type"] = "cut-watches" },
                };
                await farm.InjectAsync(dc, spec);
                return $"{dc}: {spec.ToJsonString()}";
            case FaultKind.Etcd when farm.Etcd is { } etcd:
                if (random.Next(2) == 0)
                {
                    etcd.Pause();
                    var frozen = TimeSpan.FromMilliseconds(random.Next(500, 3000));
                    await Task.Delay(frozen);
                    etcd.Resume();
                    return $"etcd frozen {frozen.TotalSeconds:0.0} s";
                }

                etcd.Kill();
                await etcd.StartAsync();
                return "etcd killed and restarted";
            case FaultKind.Etcd:
                throw new InvalidOperationException("etcd faults need --etcd");
            default:
                await farm.KillServeAsync(dc);
                await farm.StartServeAsync(dc);
                return $"local serve --dc {dc} killed and restarted";
        }
    }

    /// <summary>After the fault: what is still injected goes, as an outage ends.</summary>
    private static async Task HealAsync(ChaosFarm farm, FaultKind fault)
    {
        if (fault == FaultKind.Api)
        {
            await farm.ClearFaultsAsync();
        }
    }

    private async Task<ChaosFarm> NewFarmAsync(string name, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var root = Path.Combine(Path.GetTempPath(), "capstan-chaos-" + options.Seed.ToString(CultureInfo.InvariantCulture), name);
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        return await ChaosFarm.CreateAsync(options.Repo, root, options.Capstan, options.Etcd);
    }
}
