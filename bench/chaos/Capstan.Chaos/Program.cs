using System.Globalization;
using Capstan.Chaos;

// capstan-chaos: interrupts Capstan's operations at random moments and checks that each converges when run again.
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine("""
        usage: capstan-chaos --capstan PATH/capstan.dll [--repo DIR] [--points N] [--seed N]
                             [--operation NAME]... [--faults kill,api,etcd,serve] [--etcd]

        Runs each operation N times (default 20) on a fresh copy of the farm; each time, at a random moment, it injects one
        fault (SIGKILL of capstan, API errors, latency, resets and cut watches, etcd frozen or restarted, local serve
        killed and restarted), then runs what a user would run next and checks the invariants: the operation completes,
        'capstan diff' is clean, no lock is left, the state's history applied no step twice, no object is left that no
        release owns, and every release is ready at its recorded revision. The seed is printed; the same seed replays
        the same choices. Exit 0 when every point converged, 1 otherwise, 2 for bad arguments.

        Operations: deploy-install, deploy-upgrade, rollback, switchover, maintenance-disable, env-create, env-delete,
        deploy-pre-pull.
        """);
    return 0;
}

string? Value(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

var capstan = Value("--capstan");
if (capstan is null || !File.Exists(capstan))
{
    Console.Error.WriteLine("capstan-chaos: --capstan PATH/capstan.dll is required (bench/chaos/run.sh builds and passes it)");
    return 2;
}

var operations = args.Select((a, i) => (a, i)).Where(x => x.a == "--operation" && x.i + 1 < args.Length).Select(x => args[x.i + 1]).ToList();
var unknown = operations.Where(o => Operations.All.All(op => op.Name != o)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"capstan-chaos: unknown operation {string.Join(", ", unknown)} (known: {string.Join(", ", Operations.All.Select(o => o.Name))})");
    return 2;
}

var etcd = args.Contains("--etcd");
var faults = new List<FaultKind>();
foreach (var name in (Value("--faults") ?? (etcd ? "kill,api,etcd,serve" : "kill,api,serve")).Split(','))
{
    if (!Enum.TryParse<FaultKind>(name, ignoreCase: true, out var kind) || !Enum.IsDefined(kind) || (kind == FaultKind.Etcd && !etcd))
    {
        Console.Error.WriteLine($"capstan-chaos: unknown fault '{name}' (kill, api, serve; etcd with --etcd)");
        return 2;
    }

    faults.Add(kind);
}

int points = 20, seedValue = Environment.TickCount & 0x7fffffff;
if ((Value("--points") is { } p && (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out points) || points < 1))
    || (Value("--seed") is { } s && !int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out seedValue)))
{
    Console.Error.WriteLine("capstan-chaos: --points takes a number of at least 1, --seed a non-negative number");
    return 2;
}
var options = new ChaosOptions
{
    Capstan = Path.GetFullPath(capstan),
    Repo = Path.GetFullPath(Value("--repo") ?? "examples/wikifarm"),
    Points = points,
    Seed = seedValue,
    Operations = operations,
    Faults = faults,
    Etcd = etcd,
    Log = Console.Error,
};

Console.Error.WriteLine($"chaos: seed {options.Seed} (replay with --seed {options.Seed}), {options.Points} points per operation, faults {string.Join(",", faults).ToLowerInvariant()}");
var started = DateTime.UtcNow;
var results = await new ChaosRun(options).RunAsync(default);
Console.Write(ChaosRun.Table(results));
Console.WriteLine($"took {(DateTime.UtcNow - started).TotalMinutes:0.0} min; seed {options.Seed}");
return results.All(r => r.Converged) ? 0 : 1;
