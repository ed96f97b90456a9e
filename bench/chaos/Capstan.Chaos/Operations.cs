using System.Text.Json.Nodes;

namespace Capstan.Chaos;

/// <summary>
/// An operation the chaos run interrupts: how to bring a fresh farm to where it starts, the command, what a user runs
/// next after an interruption until it completes, and the invariants that must hold once it has.
/// </summary>
internal sealed record Operation(
    string Name,
    Func<ChaosFarm, Task> SetupAsync,
    string[] Command,
    Func<ChaosFarm, Task<string?>> RecoverAsync,
    Func<ChaosFarm, Task<List<string>>> CheckAsync)
{
    /// <summary>The datacenters the operation works in (where API and server faults are aimed).</summary>
    public IReadOnlyList<string> Datacenters { get; init; } = ["eqiad"];
}

/// <summary>The operations of the chaos run, each on a small part of the example farm so that a run takes seconds.</summary>
internal static class Operations
{
    private const string Reason = "chaos";
    private static readonly string[] Debug = ["--dc", "eqiad", "-n", "mw-debug"];
    private static readonly string[] Cron = ["-n", "mw-cron"];

    public static IReadOnlyList<Operation> All { get; } =
    [
        new("deploy-install", _ => Task.CompletedTask, ["deploy", .. Debug, "--yes", "--reason", Reason], RerunAsync(["deploy", .. Debug, "--yes", "--reason", Reason]), DeployedAsync),
        new("deploy-upgrade", async farm =>
        {
            await MustAsync(farm, ["deploy", .. Debug, "--yes", "--reason", "before"]);
            Edit(farm, "groups/mw-debug.yaml", "replicas: 2", "replicas: 3");
        }, ["deploy", .. Debug, "--yes", "--reason", Reason], RerunAsync(["deploy", .. Debug, "--yes", "--reason", Reason]), DeployedAsync),
        new("rollback", async farm =>
        {
            await MustAsync(farm, ["deploy", .. Debug, "--yes", "--reason", "first"]);
            Edit(farm, "groups/mw-debug.yaml", "replicas: 2", "replicas: 3");
            await MustAsync(farm, ["deploy", .. Debug, "--yes", "--reason", "second"]);
        }, ["rollback", "eqiad/mw-debug/pinkunicorn", "--to", "1", "--yes", "--reason", Reason], RerunAsync(["rollback", "eqiad/mw-debug/pinkunicorn", "--to", "1", "--yes", "--reason", Reason]), async farm =>
        {
            // Rolled back to revision 1: the repo goes back to what revision 1 was, as the deployer's revert would.
            Edit(farm, "groups/mw-debug.yaml", "replicas: 3", "replicas: 2");
            return await DeployedAsync(farm);
        }),
        new("switchover", async farm => await MustAsync(farm, ["deploy", .. Cron, "--yes", "--reason", "before"]),
            ["switchover", "--from", "eqiad", "--to", "codfw", "--yes", "--reason", Reason], RecoverSwitchoverAsync, SwitchedAsync) { Datacenters = ["eqiad", "codfw"] },
        new("maintenance-disable", async farm => await MustAsync(farm, ["deploy", .. Cron, "--yes", "--reason", "before"]),
            ["maintenance", "disable", "--reason", Reason], RerunAsync(["maintenance", "disable", "--reason", Reason]), MaintenanceOffAsync) { Datacenters = ["eqiad", "codfw"] },
        new("env-create", EnvironmentSecretsAsync, ["env", "create", "chaos", .. EnvArgs],
            RerunAsync(["env", "create", "chaos", .. EnvArgs], async farm => (await EnvironmentReadyAsync(farm)).Count == 0), EnvironmentReadyAsync),
        new("env-delete", async farm =>
        {
            await EnvironmentSecretsAsync(farm);
            await MustAsync(farm, ["env", "create", "chaos", .. EnvArgs]);
        }, ["env", "delete", "chaos", "--yes", "--actor", "chaos"],
            RerunAsync(["env", "delete", "chaos", "--yes", "--actor", "chaos"], async farm => await EnvironmentAsync(farm) is null), EnvironmentGoneAsync),
        new("deploy-pre-pull", async farm =>
        {
            await MustAsync(farm, ["deploy", .. Debug, "--yes", "--reason", "before"]);
            Edit(farm, "deploy/images/default.yaml", "083015-publish", "101500-publish");
            // The new image is in the registry, as a publish would have put it: the local clusters may pull it.
            await MustAsync(farm, ["local", "images", "add", "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish"]);
        }, ["deploy", .. Debug, "--pre-pull", "--yes", "--reason", Reason], RerunAsync(["deploy", .. Debug, "--pre-pull", "--yes", "--reason", Reason]), DeployedAsync),
    ];

    private static string[] EnvArgs => ["--owner", "chaos", "--actor", "chaos", "--purpose", "ci", "--expires", "12h", "--group", "mw-debug", "--dc", "eqiad"];

    /// <summary>
    /// A recovery that runs the same command again, as a user would after a crash (a few times: a fault may still be
    /// fading), until it succeeds or <paramref name="done"/> says the farm is where the command would have put it (a
    /// create that finished before the kill refuses to run twice). Null when it completed, else what the last attempt said.
    /// </summary>
    private static Func<ChaosFarm, Task<string?>> RerunAsync(string[] command, Func<ChaosFarm, Task<bool>>? done = null) => async farm =>
    {
        CliResult? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            last = await farm.RunAsync(command);
            if (last.ExitCode == 0 || (done is not null && await done(farm)))
            {
                return null;
            }
        }

        return Failure(last!);
    };

    private static string Failure(CliResult result) =>
        $"exit {result.ExitCode}: {string.Join(" | ", (result.Err + result.Out).Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(3))}";

    private static async Task<string?> RecoverSwitchoverAsync(ChaosFarm farm)
    {
        CliResult? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            // An interrupted switchover is finished with --resume; one that never started its journal is run again.
            last = await farm.RunAsync("switchover", "--resume", "--yes", "--reason", Reason);
            if (last.ExitCode == 0)
            {
                return null;
            }

            if (!last.Err.Contains("no unfinished switchover", StringComparison.Ordinal))
            {
                continue;
            }

            var state = await StateAsync(farm);
            if (state?["primary_dc"]?.GetValue<string>() == "codfw")
            {
                return null;
            }

            last = await farm.RunAsync("switchover", "--from", "eqiad", "--to", "codfw", "--yes", "--reason", Reason);
            if (last.ExitCode == 0)
            {
                return null;
            }
        }

        return Failure(last!);
    }

    private static async Task<List<string>> DeployedAsync(ChaosFarm farm)
    {
        var violations = await Invariants.DiffCleanAsync(farm, Debug);
        violations.AddRange(await Invariants.NoLockAsync(farm));
        violations.AddRange(await Invariants.ReadyAtRecordedRevisionAsync(farm, Debug));
        violations.AddRange(await Invariants.NoOrphansAsync(farm, "eqiad", ["mw-debug"]));
        return violations;
    }

    private static async Task<List<string>> SwitchedAsync(ChaosFarm farm)
    {
        var violations = await Invariants.DiffCleanAsync(farm, Cron);
        violations.AddRange(await Invariants.NoLockAsync(farm));
        violations.AddRange(await Invariants.HistoryAsync(farm, "codfw", maintenance: true, expectPrimaryChanges: 1, expectMaintenanceOffs: 1));
        violations.AddRange(await Invariants.NoOrphansAsync(farm, "eqiad", ["mw-cron"]));
        violations.AddRange(await Invariants.NoOrphansAsync(farm, "codfw", ["mw-cron"]));
        return violations;
    }

    private static async Task<List<string>> MaintenanceOffAsync(ChaosFarm farm)
    {
        var violations = await Invariants.DiffCleanAsync(farm, Cron);
        violations.AddRange(await Invariants.NoLockAsync(farm));
        violations.AddRange(await Invariants.HistoryAsync(farm, "eqiad", maintenance: false, expectPrimaryChanges: 0, expectMaintenanceOffs: 1));
        violations.AddRange(await Invariants.NoneRunningAsync(farm, "mw-cron"));
        return violations;
    }

    private static async Task<List<string>> EnvironmentReadyAsync(ChaosFarm farm)
    {
        var violations = await Invariants.NoLockAsync(farm);
        var env = await EnvironmentAsync(farm);
        if (env is null)
        {
            violations.Add("env list does not show the environment");
        }
        else if (env["creating"] is not null)
        {
            violations.Add($"the environment's create never finished: {env["creating"]!.ToJsonString()}");
        }
        else if (env["health"]?["ready"]?.GetValue<int>() is not { } ready || ready != env["health"]?["desired"]?.GetValue<int>())
        {
            violations.Add($"the environment is not ready: {env["health"]?.ToJsonString()}");
        }

        violations.AddRange(await Invariants.NoOrphansAsync(farm, "eqiad", ["chaos--mw-debug"]));
        return violations;
    }

    private static async Task<List<string>> EnvironmentGoneAsync(ChaosFarm farm)
    {
        var violations = await Invariants.NoLockAsync(farm);
        if (await EnvironmentAsync(farm) is not null)
        {
            violations.Add("env list still shows the deleted environment");
        }

        await using var client = farm.Client("eqiad");
        foreach (var name in new[] { "chaos--mw-debug", "chaos--backends" })
        {
            if (await client.GetAsync(new Kubernetes.ObjectRef("v1", "Namespace", null, name), default) is { } ns)
            {
                violations.Add($"namespace {name} is left ({ns["status"]?["phase"]})");
            }
        }

        return violations;
    }

    private static async Task<JsonObject?> EnvironmentAsync(ChaosFarm farm)
    {
        var list = await farm.RunAsync("env", "list", "-o", "json");
        return list.ExitCode == 0 && JsonNode.Parse(list.Out) is JsonArray items
            ? items.OfType<JsonObject>().FirstOrDefault(e => e["name"]?.GetValue<string>() == "chaos")
            : null;
    }

    private static async Task<JsonObject?> StateAsync(ChaosFarm farm)
    {
        var get = await farm.RunAsync("state", "get", "-o", "json");
        return get.ExitCode == 0 ? JsonNode.Parse(get.Out)?["state"] as JsonObject ?? JsonNode.Parse(get.Out) as JsonObject : null;
    }

    private static Task EnvironmentSecretsAsync(ChaosFarm farm) => MustAsync(farm, ["env", "secrets", "init", "chaos", "--force"]);

    private static async Task MustAsync(ChaosFarm farm, params string[] command)
    {
        var result = await farm.RunAsync(command);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"setup: capstan {string.Join(' ', command)} exited {result.ExitCode}: {result.Err}");
        }
    }

    private static void Edit(ChaosFarm farm, string file, string from, string to)
    {
        var path = Path.Combine(farm.Root, file);
        var text = File.ReadAllText(path);
        if (!text.Contains(from, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"setup: {file} has no '{from}'");
        }

        File.WriteAllText(path, text.Replace(from, to, StringComparison.Ordinal));
    }
}
