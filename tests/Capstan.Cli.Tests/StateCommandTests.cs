using System.Text.Json;
using Capstan.Testing;

namespace Capstan.Cli.Tests;

/// <summary><c>capstan state</c> and <c>capstan maintenance</c> on the file store, and the render following the state.</summary>
public sealed class StateCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    private string Store => "file://" + Path.Combine(_temp.Path, "store");

    private CliRunner.Result Run(params string[] args) => CliRunner.Run([.. args, "--repo", "examples/wikifarm", "--state", Store]);

    public void Dispose() => _temp.Dispose();

    private int HistoryCount()
    {
        var history = Run("state", "history", "-o", "json");
        Assert.Equal(0, history.ExitCode);
        using var doc = JsonDocument.Parse(history.Out);
        return doc.RootElement.GetArrayLength();
    }

    [Fact]
    public void An_empty_store_is_shown_and_rendered_from_the_seed_without_writing_it_and_the_first_write_records_it()
    {
        var get = Run("state", "get", "-o", "json");
        Assert.Equal(0, get.ExitCode);
        using (var doc = JsonDocument.Parse(get.Out))
        {
            Assert.Equal("eqiad", doc.RootElement.GetProperty("primary_dc").GetString());
            Assert.Equal("state.yaml", doc.RootElement.GetProperty("seed").GetString());
        }

        Assert.Contains("is empty; using the state-seed state.yaml (primary eqiad, read-only nowhere, maintenance enabled) without writing it", get.Err, StringComparison.Ordinal);
        Assert.Contains("kind: CronJob", Run("render", "-n", "mw-cron", "--dc", "eqiad").Out, StringComparison.Ordinal);
        Assert.Equal(0, HistoryCount());

        var set = Run("state", "set", "read-only", "codfw", "maintenance of the codfw databases", "--reason", "db work");
        Assert.Equal(0, set.ExitCode);
        Assert.Contains("was empty: initialised it from the state-seed state.yaml", set.Err, StringComparison.Ordinal);
        Assert.Equal(2, HistoryCount());
        using var after = JsonDocument.Parse(Run("state", "get", "-o", "json").Out);
        Assert.Equal("db work", after.RootElement.GetProperty("updated").GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Null, after.RootElement.GetProperty("seed").ValueKind);
    }

    [Fact]
    public async Task A_state_that_vanished_while_its_history_stayed_is_an_error_not_a_re_seed()
    {
        Assert.Equal(0, Run("state", "set", "primary-dc", "codfw", "--reason", "switchover", "--force").ExitCode);
        await using (var store = new Capstan.State.Files.FileStateStore(Path.Combine(_temp.Path, "store")))
        {
            var key = (await store.GetAsync("wikifarm/state", default))!;
            await store.CommitAsync(new Capstan.State.StoreTxn([], [new Capstan.State.StoreOp.Delete(key.Key)]), default);
        }

        foreach (var args in new[] { new[] { "state", "get" }, ["render", "-n", "mw-cron"], ["state", "set", "maintenance", "false", "--reason", "r"] })
        {
            var result = Run(args);
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("is missing from file://", result.Err, StringComparison.Ordinal);
            Assert.Contains("it existed and vanished, so it is not re-seeded", result.Err, StringComparison.Ordinal);
        }

        Assert.Equal(2, HistoryCount());
    }

    [Fact]
    public void Disabling_maintenance_removes_cron_jobs_from_the_render()
    {
        Assert.Contains("kind: CronJob", Run("render", "-n", "mw-cron", "--dc", "eqiad").Out, StringComparison.Ordinal);
        var disable = CliRunner.Run("maintenance", "disable", "--repo", "examples/wikifarm", "--state", Store, "--reason", "switchover", "--actor", "alice", "--state-only");
        Assert.Equal(0, disable.ExitCode);
        Assert.Contains("maintenance_enabled: true -> false", disable.Out, StringComparison.Ordinal);
        var render = Run("render", "-n", "mw-cron");
        Assert.Equal(0, render.ExitCode);
        Assert.DoesNotContain("kind: CronJob", render.Out, StringComparison.Ordinal);

        var history = Run("state", "history");
        Assert.Contains("alice", history.Out, StringComparison.Ordinal);
        Assert.Contains("switchover", history.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Switching_the_primary_moves_the_cron_jobs()
    {
        Assert.Equal(0, Run("maintenance", "disable", "--reason", "switch", "--state-only").ExitCode);
        Assert.Equal(0, Run("state", "set", "primary-dc", "codfw", "--reason", "switch", "--force").ExitCode);
        Assert.Equal(0, Run("maintenance", "enable", "--reason", "switch", "--state-only").ExitCode);
        Assert.DoesNotContain("kind: CronJob", Run("render", "-n", "mw-cron", "--dc", "eqiad").Out, StringComparison.Ordinal);
        Assert.Contains("kind: CronJob", Run("render", "-n", "mw-cron", "--dc", "codfw").Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2, "unknown state key 'primary' (allowed: primary-dc, read-only, maintenance)", "state", "set", "primary", "codfw", "--reason", "r")]
    [InlineData(2, "unknown datacenter 'ulsfo' (allowed: eqiad, codfw); nothing was written", "state", "set", "primary-dc", "ulsfo", "--reason", "r")]
    [InlineData(2, "maintenance must be true or false, not 'yes'", "state", "set", "maintenance", "yes", "--reason", "r")]
    [InlineData(2, "read-only takes the reason itself (a string), or false; not true", "state", "set", "read-only", "eqiad", "true", "--reason", "r")]
    [InlineData(2, "--reason is required: every change of the state records why", "state", "set", "primary-dc", "codfw")]
    [InlineData(2, "--reason is required: every change of the state records why", "maintenance", "disable", "--reason", " ", "--state-only")]
    [InlineData(2, "unknown datacenter 'ulsfo' (allowed: eqiad, codfw); nothing was written", "state", "set", "read-only", "ulsfo", "x", "--reason", "r")]
    public void Bad_input_is_refused_and_nothing_is_written(int code, string message, params string[] args)
    {
        // On an empty store, not even the seed is written; on an initialised one, nothing more.
        foreach (var history in new[] { 0, 1 })
        {
            Assert.Equal(history, HistoryCount());
            var result = Run(args);
            Assert.Equal(code, result.ExitCode);
            Assert.EndsWith($"capstan: error: {message}\n", result.Err, StringComparison.Ordinal);
            Assert.Equal(history, HistoryCount());
            Assert.Equal(0, Run("state", "set", "maintenance", "true", "--reason", "initialise from the seed").ExitCode);
        }
    }

    [Fact]
    public void A_nonsense_state_needs_force_and_get_flags_it()
    {
        var refused = Run("state", "set", "read-only", "eqiad", "maintenance window", "--reason", "r");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--force", refused.Err, StringComparison.Ordinal);

        Assert.Equal(0, Run("state", "set", "read-only", "eqiad", "maintenance window", "--reason", "r", "--force").ExitCode);
        var get = Run("state", "get");
        Assert.Equal(0, get.ExitCode);
        Assert.Contains("warning: nonsense state", get.Err, StringComparison.Ordinal);

        // The gate still closes: no CronJobs render in a read-only primary.
        Assert.DoesNotContain("kind: CronJob", Run("render", "-n", "mw-cron").Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_prints_each_change_as_it_happens()
    {
        Assert.Equal(0, Run("state", "set", "maintenance", "true", "--reason", "initialise from the seed").ExitCode);
        Assert.Equal(1, HistoryCount());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (running, output) = CliRunner.Start(cts.Token, "state", "watch", "--repo", "examples/wikifarm", "--state", Store);
        await Task.Delay(1000, cts.Token);
        Assert.Equal(0, Run("maintenance", "disable", "--reason", "drill one", "--actor", "dora", "--state-only").ExitCode);
        Assert.Equal(0, Run("state", "set", "read-only", "codfw", "drill", "--reason", "drill two").ExitCode);
        while (!output().Contains("drill two", StringComparison.Ordinal))
        {
            await Task.Delay(50, cts.Token);
        }

        await cts.CancelAsync();
        Assert.Equal(0, await running);
        var lines = output().TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Contains("dora  maintenance_enabled: true -> false  (drill one)", lines[0], StringComparison.Ordinal);
        Assert.Contains("read_only.codfw: false -> \"drill\"  (drill two)", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_corrupt_store_fails_closed()
    {
        Directory.CreateDirectory(Path.Combine(_temp.Path, "store"));
        File.WriteAllText(Path.Combine(_temp.Path, "store", "store.json"), "garbage");
        var render = Run("render", "-n", "mw-cron");
        Assert.Equal(1, render.ExitCode);
        Assert.Empty(render.Out);
        Assert.Contains("corrupt", render.Err, StringComparison.Ordinal);

        // Releases that do not depend on the state still render.
        Assert.Equal(0, Run("render", "-n", "mw-web").ExitCode);
    }

    [Fact]
    public void An_unreachable_etcd_fails_closed_with_the_endpoint_named()
    {
        var port = EtcdServer.FreePort();
        var result = CliRunner.Run(
            new Dictionary<string, string> { ["CAPSTAN_STATE"] = $"etcd://127.0.0.1:{port}" },
            "render", "--repo", "examples/wikifarm", "-n", "mw-cron");
        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.Out);
        Assert.StartsWith("capstan: error: etcd is unreachable", result.Err, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_store_addresses_are_user_errors()
    {
        var result = CliRunner.Run("state", "get", "--repo", "examples/wikifarm", "--state", "redis://x:1");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("not supported", result.Err, StringComparison.Ordinal);
    }
}

/// <summary>The same commands against a real etcd, chosen through CAPSTAN_STATE.</summary>
public sealed class EtcdStateCommandTests : IAsyncLifetime
{
    private readonly EtcdServer _etcd = new();

    public Task InitializeAsync() => _etcd.InitializeAsync();

    public Task DisposeAsync() => _etcd.DisposeAsync();

    [Fact]
    public void State_lives_in_etcd_when_capstan_state_points_there()
    {
        var env = new Dictionary<string, string> { ["CAPSTAN_STATE"] = _etcd.Address + "?prefix=/cli-test" };
        var set = CliRunner.Run(env, "state", "set", "read-only", "codfw", "rack move", "--repo", "examples/wikifarm", "--reason", "dc-ops", "--actor", "bob");
        Assert.Equal(0, set.ExitCode);
        Assert.Contains("etcd://127.0.0.1", set.Out, StringComparison.Ordinal);

        var get = CliRunner.Run(env, "state", "get", "--repo", "examples/wikifarm", "-o", "json");
        using var doc = JsonDocument.Parse(get.Out);
        Assert.Equal("rack move", doc.RootElement.GetProperty("read_only").GetProperty("codfw").GetString());
        Assert.Equal("bob", doc.RootElement.GetProperty("updated").GetProperty("actor").GetString());
    }
}

/// <summary><c>capstan local serve</c> and <c>local reset</c> on a copy of the example farm.</summary>
public sealed class LocalCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Repo() => CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Serve_runs_until_interrupted_writes_a_kubeconfig_and_keeps_objects()
    {
        var repo = Repo();
        var kubeconfig = Path.Combine(_temp.Path, "kubeconfig");
        using var cts = new CancellationTokenSource();
        var (running, output) = CliRunner.Start(cts.Token, "local", "serve", "--dc", "eqiad", "--repo", repo, "--kubeconfig", kubeconfig);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!output().Contains("https://127.0.0.1:", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "serve printed no URL");
            await Task.Delay(50);
        }

        var url = new Uri(output().Trim());
        var connection = Capstan.Kubernetes.KubeConfig.LoadFiles([kubeconfig]).Resolve();
        Assert.Equal(url, connection.Server);
        Assert.NotNull(connection.Token);
        Assert.NotNull(connection.CertificateAuthority);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(kubeconfig));
        await using (var client = new Capstan.Kubernetes.KubeClient(connection))
        {
            await client.ApplyAsync(new System.Text.Json.Nodes.JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "mw-web" } }, false, false, default);
        }

        // While it runs, the cluster cannot be reset or served twice.
        Assert.Equal(2, CliRunner.Run("local", "reset", "--dc", "eqiad", "--repo", repo).ExitCode);
        var twice = CliRunner.Run("local", "serve", "--dc", "eqiad", "--repo", repo);
        Assert.Equal(2, twice.ExitCode);
        Assert.Contains("already runs", twice.Err, StringComparison.Ordinal);

        await cts.CancelAsync();
        Assert.Equal(0, await running);
        await using (var host = await Capstan.LocalCluster.LocalClusterHost.OpenAsync(Path.Combine(repo, ".capstan", "clusters", "eqiad"), new Capstan.LocalCluster.LocalClusterOptions(), requireOwnServer: true, default))
        await using (var client = new Capstan.Kubernetes.KubeClient(new Capstan.Kubernetes.ClusterConnection(host.Url, System.Text.Encoding.UTF8.GetBytes(host.CertificateAuthorityPem), Token: host.Token)))
        {
            Assert.NotNull(await client.GetAsync(new Capstan.Kubernetes.ObjectRef("v1", "Namespace", null, "mw-web"), default));
        }

        var reset = CliRunner.Run("local", "reset", "--dc", "eqiad", "--repo", repo);
        Assert.Equal(0, reset.ExitCode);
        Assert.False(Directory.Exists(Path.Combine(repo, ".capstan", "clusters", "eqiad")));
    }

    [Fact]
    public void Serve_refuses_an_unknown_datacenter()
    {
        var result = CliRunner.Run("local", "serve", "--dc", "ulsfo", "--repo", "examples/wikifarm");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("capstan: error: unknown datacenter 'ulsfo' (allowed: eqiad, codfw)\n", result.Err);
    }
}
