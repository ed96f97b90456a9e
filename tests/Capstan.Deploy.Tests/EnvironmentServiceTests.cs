using Capstan.Core.Diagnostics;
using Capstan.Kubernetes;

namespace Capstan.Deploy.Tests;

/// <summary>Environments created, listed and deleted on the embedded cluster.</summary>
public sealed class EnvironmentServiceTests
{
    private static async Task<FarmHarness> StartAsync()
    {
        var farm = await FarmHarness.StartAsync();
        // The environment's own secrets (production's are never used).
        Testing.FarmCopy.WriteEnvironmentSecrets(farm.Root, "alice-test");
        return farm;
    }

    private static EnvironmentService Service(FarmHarness farm) => new(farm.Model, farm.Files, farm.Clusters, farm.Store, TimeProvider.System);

    private static EnvironmentRequest Request(string owner = "alice", string name = "alice-test") =>
        new(name, owner, "feature", "search ranking change", ["https://phabricator.example/T123"], TimeSpan.FromDays(7), false, null, ["eqiad"], ["mw-web"], [], owner);

    [Fact]
    public async Task An_environment_is_created_in_its_own_namespace_owned_and_deleted_leaving_production_alone()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        var log = new EventLog();
        var (record, results) = await service.CreateAsync(Request(), farm.State, log, default);
        Assert.All(results, r => Assert.True(r.Succeeded, r.Cause));

        // mw-web's two releases, and the four backends of its own (logs go to stdout; the mesh is the staging set's).
        Assert.Equal(
            ["alice-test--backends/database", "alice-test--backends/mail", "alice-test--backends/memcached", "alice-test--backends/redis", "alice-test--mw-web/main", "alice-test--mw-web/prometheus"],
            results.SelectMany(r => r.Releases).Select(r => $"{r.Id.Namespace}/{r.Id.Release}").Order(StringComparer.Ordinal));

        // The backends are up before any MediaWiki release is applied: every MediaWiki release needs them.
        var events = log.Events.ToList();
        var lastBackendDone = events.FindLastIndex(e => e.Release?.Namespace == "alice-test--backends" && e.State == ReleaseState.Done);
        var firstMediaWiki = events.FindIndex(e => e.Release?.Namespace == "alice-test--mw-web" && e.Release.Release == "main");
        Assert.True(lastBackendDone >= 0 && lastBackendDone < firstMediaWiki, string.Join("\n", events.Select(e => $"{e.Release} {e.State} {e.Message}")));

        var client = farm.Clusters["eqiad"];
        var namespaces = await service.NamespacesAsync(record, "eqiad", default);
        Assert.Equal(["alice-test--backends", "alice-test--mw-web"], namespaces.Select(n => n["metadata"]!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        var ns = namespaces.Single(n => n["metadata"]!["name"]!.GetValue<string>() == "alice-test--mw-web");
        Assert.Equal("alice", ns["metadata"]!["annotations"]![EnvironmentService.OwnerAnnotation]!.GetValue<string>());
        Assert.Equal(record.Expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture), ns["metadata"]!["annotations"]!["janitor/expires"]!.GetValue<string>());
        // Its URL: an Ingress at the class's host, to the TLS Service; no production node port.
        var url = (await client.GetAsync(new ObjectRef("networking.k8s.io/v1", "Ingress", "alice-test--mw-web", "mediawiki-main-url"), default))!;
        Assert.Equal("alice-test.mw-web.env.wikifarm.example", url["spec"]!["rules"]![0]!["host"]!.GetValue<string>());
        Assert.Equal("mediawiki-main-tls-service", url["spec"]!["rules"]![0]!["http"]!["paths"]![0]!["backend"]!["service"]!["name"]!.GetValue<string>());
        var tls = (await client.GetAsync(new ObjectRef("v1", "Service", "alice-test--mw-web", "mediawiki-main-tls-service"), default))!;
        Assert.NotEqual(30450, tls["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>());
        Assert.Equal([("mw-web", "https://alice-test.mw-web.env.wikifarm.example/")], EnvironmentScope.Urls(farm.Model, record));
        var main = (await client.GetAsync(new ObjectRef("apps/v1", "Deployment", "alice-test--mw-web", "mw-web.eqiad.main"), default))!;
        Assert.Equal(1, main["spec"]!["replicas"]!.GetValue<int>());
        Assert.Null(await client.GetAsync(new ObjectRef("apps/v1", "Deployment", "alice-test--mw-web", "mw-web.eqiad.canary"), default));
        Assert.Null(await client.GetAsync(new ObjectRef("v1", "Namespace", null, "mw-web"), default));
        Assert.Equal(["alice-test"], (await service.Records.ListAsync(default)).Select(r => r.Name));

        // Someone else needs --force; the owner deletes it, and everything it made is gone.
        var refused = await Assert.ThrowsAsync<UserInputException>(() => service.DeleteAsync("alice-test", "bob", force: false, default));
        Assert.Equal("environment 'alice-test' belongs to alice; to delete it as bob, add --force (recorded)", refused.Message);
        var notBobs = await Assert.ThrowsAsync<UserInputException>(() => service.ExtendAsync("alice-test", TimeSpan.FromDays(1), "bob", force: false, default));
        Assert.Equal("environment 'alice-test' belongs to alice; to extend it as bob, add --force (recorded)", notBobs.Message);
        await service.DeleteAsync("alice-test", "alice", force: false, default);
        Assert.Empty(await service.NamespacesAsync(record, "eqiad", default));
        Assert.Empty(await service.Records.ListAsync(default));
        Assert.Equal(["created", "ready", "delete"], (await service.Records.HistoryAsync("alice-test", default)).Select(h => h.What));
    }

    [Fact]
    public async Task An_environment_without_secrets_of_its_own_is_told_which_file_and_which_command()
    {
        await using var farm = await FarmHarness.StartAsync();
        var refused = await Assert.ThrowsAsync<RepoValidationException>(() => Service(farm).CreateAsync(Request(), farm.State, new EventLog(), default));
        Assert.Contains(refused.Diagnostics, d => d.Message.Contains(
            "environment alice-test has no secrets.tls.certificate and secrets.tls.key of its own: 'capstan env secrets init alice-test' writes environments/alice-test.secrets.yaml with fresh ones",
            StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bad_input_is_refused_before_anything_is_written()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        farm.Write("environments/alice-test.yaml", "php:\n  workers: many\n");
        var broken = await Assert.ThrowsAsync<RepoValidationException>(() => service.CreateAsync(Request(), farm.State, new EventLog(), default));
        Assert.Contains(broken.Diagnostics, d => d.ToString().StartsWith("environments/alice-test.yaml:2:", StringComparison.Ordinal));
        File.Delete(Path.Combine(farm.Root, "environments/alice-test.yaml"));

        var noOwner = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request(owner: ""), farm.State, new EventLog(), default));
        Assert.StartsWith("an environment needs an owner (--owner)", noOwner.Message, StringComparison.Ordinal);
        var unknownGroup = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request() with { Groups = ["mw-webb"] }, farm.State, new EventLog(), default));
        Assert.StartsWith("unknown group 'mw-webb' (allowed: ", unknownGroup.Message, StringComparison.Ordinal);
        var tooLong = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request(name: new string('a', 60)), farm.State, new EventLog(), default));
        Assert.Contains("too long", tooLong.Message, StringComparison.Ordinal);
        var outside = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request() with { ValuesFiles = ["../../etc/passwd"] }, farm.State, new EventLog(), default));
        Assert.StartsWith("values file '../../etc/passwd' is outside the repo", outside.Message, StringComparison.Ordinal);
        var badSet = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request() with { Settings = ["php workers=2"] }, farm.State, new EventLog(), default));
        Assert.StartsWith("--set 'php workers=2' is not key=value", badSet.Message, StringComparison.Ordinal);
        var badSetValue = await Assert.ThrowsAsync<RepoValidationException>(() => service.CreateAsync(Request() with { Settings = ["php.workers=many"] }, farm.State, new EventLog(), default));
        Assert.Contains(badSetValue.Diagnostics, d => d.ToString().StartsWith("(--set php.workers):1:", StringComparison.Ordinal));
        var twice = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request() with { Datacenters = ["eqiad", "eqiad"] }, farm.State, new EventLog(), default));
        Assert.Equal("an environment needs one datacenter or several different ones (--dc)", twice.Message);

        Assert.Empty(await service.Records.ListAsync(default));
        Assert.DoesNotContain((await farm.Clusters["eqiad"].ListAsync("v1", "Namespace", null, null, default)).Items, n => n["metadata"]!["name"]!.GetValue<string>().Contains("--", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_create_whose_deploy_fails_removes_what_it_made()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        // Every Deployment write fails: the support release goes in, the MediaWiki release cannot.
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new LocalCluster.FaultInjector.HttpFault(503, 100_000, TimeSpan.Zero, null, "/deployments"));
        var failed = await Assert.ThrowsAsync<KubeUnavailableException>(() => service.CreateAsync(Request(), farm.State, new EventLog(), default));
        Assert.Contains("kept failing after 5 tries", failed.Message, StringComparison.Ordinal);

        farm.Clusters.LocalServer("eqiad")!.Faults.Clear();
        Assert.Empty(await service.Records.ListAsync(default));
        Assert.DoesNotContain((await farm.Clusters["eqiad"].ListAsync("v1", "Namespace", null, null, default)).Items, n => n["metadata"]!["name"]!.GetValue<string>() == "alice-test--mw-web");
        Assert.Equal(["created", "delete (the create failed)"], (await service.Records.HistoryAsync("alice-test", default)).Select(h => h.What));
    }

    [Fact]
    public async Task An_environment_sleeps_at_zero_replicas_and_wakes_to_what_it_had()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);
        var main = new ObjectRef("apps/v1", "Deployment", "alice-test--mw-web", "mw-web.eqiad.main");
        var client = farm.Clusters["eqiad"];

        var asleep = await service.SleepAsync("alice-test", "alice", force: false, default);
        Assert.Equal(1, asleep.Sleeping!["eqiad/alice-test--mw-web/mw-web.eqiad.main"]);
        Assert.Equal(0, (await client.GetAsync(main, default))!["spec"]!["replicas"]!.GetValue<int>());
        var again = await Assert.ThrowsAsync<UserInputException>(() => service.SleepAsync("alice-test", "alice", force: false, default));
        Assert.Equal("environment 'alice-test' is asleep already; 'capstan env wake alice-test' wakes it", again.Message);

        var awake = await service.WakeAsync("alice-test", "alice", force: false, default);
        Assert.Null(awake.Sleeping);
        var live = (await client.GetAsync(main, default))!;
        Assert.Equal(1, live["spec"]!["replicas"]!.GetValue<int>());
        // Rolled out as the wake waited for it (the Deployment's own status counts may still be catching up).
        Assert.True((await client.GetRolloutStatusAsync("alice-test--mw-web", "mw-web.eqiad.main", default)).Done);
        Assert.Equal(["created", "ready", "sleep", "wake"], (await service.Records.HistoryAsync("alice-test", default)).Select(h => h.What));
    }

    [Fact]
    public async Task A_followed_environment_picks_up_a_production_change_on_refresh_and_a_pinned_one_reports_it_is_behind()
    {
        await using var farm = await StartAsync();
        Testing.FarmCopy.WriteEnvironmentSecrets(farm.Root, "pinned-test");
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);
        await service.CreateAsync(Request(name: "pinned-test") with { Purpose = "demo", Pin = true, Links = [] }, farm.State, new EventLog(), default);
        Assert.Equal(
            ["alice-test: refreshed, 0 releases changed", "pinned-test: pinned (" + (await service.Records.GetAsync("pinned-test", default))!.Value.Record.PinnedRevision + "); the repo would change nothing"],
            (await service.RefreshAsync(null, "alice", new EventLog(), default)).Lines);

        // Production's values change: the followed environment takes it, the pinned one says it is behind.
        farm.Write("values/mw-web.yaml", File.ReadAllText(Path.Combine(farm.Root, "values/mw-web.yaml")).Replace("workers: 12", "workers: 9", StringComparison.Ordinal));
        service = Service(farm);
        var report = (await service.RefreshAsync(null, "alice", new EventLog(), default)).Lines;
        Assert.Equal("alice-test: refreshed, 1 release changed", report[0]);
        Assert.EndsWith("behind: the repo now would change 1 release, not refreshed", report[1], StringComparison.Ordinal);

        var followed = (await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "alice-test--mw-web", "mw-web.eqiad.main"), default))!;
        var pinned = (await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "pinned-test--mw-web", "mw-web.eqiad.main"), default))!;
        string Env(System.Text.Json.Nodes.JsonObject d) => d["spec"]!["template"]!["spec"]!["containers"]!.AsArray().First(c => c!["name"]!.GetValue<string>() == "mediawiki-main-app")!["env"]!.AsArray()
            .First(e => e!["name"]!.GetValue<string>() == "FPM__pm__max_children")!["value"]!.GetValue<string>();
        Assert.Equal("9", Env(followed));
        Assert.Equal("12", Env(pinned));
    }

    [Fact]
    public async Task Drift_names_each_differing_key_with_the_file_and_line_that_set_it_and_leaves_secrets_out()
    {
        await using var farm = await StartAsync();
        farm.Write("environments/alice-test.yaml", "php:\n  workers: 2\n");
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);

        var drift = await service.DriftAsync("alice-test", farm.State, default);
        var workers = drift.Values.Single(v => v.Release == "mw-web/main" && v.Difference.Path == "php.workers").Difference;
        Assert.Equal(("2", "environments/alice-test.yaml:2:12", "12", "values/mw-web.yaml:3:12"), (workers.Environment, workers.EnvironmentSetBy!.ToString(), workers.Production, workers.ProductionSetBy!.ToString()));
        // Secrets are left out altogether: equal or not would say something about production's.
        Assert.DoesNotContain(drift.Values, v => v.Difference.Path.StartsWith("secrets", StringComparison.Ordinal));
        Assert.DoesNotContain(drift.Values, v => (v.Difference.Production ?? string.Empty).Contains("PRIVATE KEY", StringComparison.Ordinal) || (v.Difference.Production ?? string.Empty).Contains("password", StringComparison.Ordinal));
        Assert.Equal(["mw-web/canary (canaries are off in environments)"], drift.OnlyInProduction);
    }

    [Fact]
    public async Task A_second_create_of_the_name_is_told_whose_it_is()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);
        var clash = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(Request(owner: "bob"), farm.State, new EventLog(), default));
        Assert.StartsWith("environment 'alice-test' already exists: owned by alice (feature)", clash.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await service.NamespacesAsync((await service.Records.GetAsync("alice-test", default))!.Value.Record, "eqiad", default)).Count);
    }
}

/// <summary>Environments whose create was killed, their quota, and the janitor's idle sleep.</summary>
public sealed class EnvironmentLifecycleTests
{
    private static EnvironmentService Service(FarmHarness farm, TimeProvider? time = null) => new(farm.Model, farm.Files, farm.Clusters, farm.Store, time ?? TimeProvider.System);

    /// <summary>The id of a process that has exited: what a killed create leaves in its record.</summary>
    private static int DeadProcess()
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }

    private static State.EnvironmentRecord Left(string name, int pid) => new(
        name, "alice", "ci", string.Empty, [], "alice", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddHours(12),
        Core.Environments.EnvironmentBase.Follow, null, null, ["eqiad"], ["mw-web"])
    {
        Creating = new State.CreateInProgress(Environment.MachineName, pid, DateTimeOffset.UtcNow),
    };

    [Fact]
    public async Task A_create_killed_half_way_is_resumed_by_the_owners_next_create_and_otherwise_removed_by_gc()
    {
        await using var farm = await FarmHarness.StartAsync();
        foreach (var name in new[] { "resumed", "abandoned", "running" })
        {
            Testing.FarmCopy.WriteEnvironmentSecrets(farm.Root, name);
        }

        var service = Service(farm);
        // What a kill leaves behind: the record, marked as being created by a process that is gone, and a labelled namespace.
        var dead = DeadProcess();
        await service.Records.CreateAsync(Left("resumed", dead), default);
        await service.Records.CreateAsync(Left("abandoned", dead), default);
        await service.Records.CreateAsync(Left("running", Environment.ProcessId), default);
        await farm.Clusters["eqiad"].ApplyAsync(
            new System.Text.Json.Nodes.JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "abandoned--mw-web", ["labels"] = new System.Text.Json.Nodes.JsonObject { ["capstan.dev/environment"] = "abandoned" } } },
            "capstan-environment",
            default);

        // The owner's next create finishes the job, with the record as it was first asked for.
        var request = new EnvironmentRequest("resumed", "alice", "ci", string.Empty, [], TimeSpan.FromHours(6), false, null, ["eqiad"], ["mw-web"], [], "alice");
        var log = new EventLog();
        var (record, results) = await service.CreateAsync(request, farm.State, log, default);
        Assert.Null(record.Creating);
        Assert.True(Assert.Single(results).Succeeded);
        Assert.Contains(log.Events, e => e.Message.Contains("resuming the create alice started", StringComparison.Ordinal));
        Assert.Equal(["created", "resume the interrupted create", "ready"], (await service.Records.HistoryAsync("resumed", default)).Select(h => h.What));
        Assert.NotNull(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "resumed--mw-web", "mw-web.eqiad.main"), default));

        // The class's quota and container defaults are in every namespace.
        var quota = (await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "ResourceQuota", "resumed--mw-web", "capstan-environment"), default))!;
        Assert.Equal("20", quota["spec"]!["hard"]!["pods"]!.GetValue<string>());
        var limits = (await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "LimitRange", "resumed--mw-web", "capstan-environment"), default))!;
        Assert.Equal("100m", limits["spec"]!["limits"]![0]!["defaultRequest"]!["cpu"]!.GetValue<string>());

        // A create still running is not taken over.
        var busy = await Assert.ThrowsAsync<UserInputException>(() => service.CreateAsync(request with { Name = "running" }, farm.State, new EventLog(), default));
        Assert.StartsWith("environment 'running' already exists", busy.Message, StringComparison.Ordinal);

        // gc removes the one nobody came back for, namespace and all, and leaves the running one.
        var actions = await new EnvironmentCollector(service, TimeProvider.System).CollectAsync(new CollectOptions([], new NotificationSink(null, null), DryRun: false), "janitor", default);
        Assert.Equal("remove (its create, started", Assert.Single(actions, a => a.Environment == "abandoned").What[..27]);
        Assert.DoesNotContain(actions, a => a.Environment == "running");
        Assert.Equal(["resumed", "running"], (await service.Records.ListAsync(default)).Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Namespace", null, "abandoned--mw-web"), default));
    }

    [Fact]
    public async Task Gc_puts_an_environment_to_sleep_when_nothing_happened_in_it_for_as_long_as_its_class_allows()
    {
        await using var farm = await FarmHarness.StartAsync();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var service = Service(farm, clock);
        var start = clock.GetUtcNow();
        await service.Records.CreateAsync(new State.EnvironmentRecord(
            "idle", "alice", "feature", string.Empty, ["https://phabricator.example/T1"], "alice", start, start.AddDays(20),
            Core.Environments.EnvironmentBase.Follow, null, null, ["eqiad"], ["mw-web"]), default);
        await service.Records.CreateAsync(new State.EnvironmentRecord(
            "busy", "bob", "feature", string.Empty, ["https://phabricator.example/T2"], "bob", start, start.AddDays(20),
            Core.Environments.EnvironmentBase.Follow, null, null, ["eqiad"], ["mw-web"]), default);
        var collector = new EnvironmentCollector(service, clock);
        var options = new CollectOptions([], new NotificationSink(null, null), DryRun: false);

        clock.Advance(TimeSpan.FromDays(2));
        // Activity: a change of each environment's own dynamic state.
        var idle = (await service.Records.GetAsync("idle", default))!.Value.Record;
        var busy = (await service.Records.GetAsync("busy", default))!.Value.Record;
        await service.State(idle).ChangeAsync(new Core.State.StateChange.Initialize(Core.State.StateRules.Fresh("eqiad", ["eqiad"])), "alice", "testing", force: false, default);
        await service.State(busy).ChangeAsync(new Core.State.StateChange.Initialize(Core.State.StateRules.Fresh("eqiad", ["eqiad"])), "bob", "testing", force: false, default);
        clock.Advance(TimeSpan.FromDays(2.5));
        // Two and a half days after: a feature environment sleeps after three idle days.
        Assert.Empty(await collector.CollectAsync(options, "janitor", default));
        clock.Advance(TimeSpan.FromDays(0.5));
        await service.State(busy).ChangeAsync(new Core.State.StateChange.SetMaintenance(false), "bob", "testing", force: false, default);
        clock.Advance(TimeSpan.FromDays(0.5));
        // Three and a half days: the idle one sleeps; the one changed a moment ago does not.
        var slept = Assert.Single(await collector.CollectAsync(options, "janitor", default));
        Assert.Equal("idle", slept.Environment);
        Assert.StartsWith("sleep (idle since ", slept.What, StringComparison.Ordinal);
        Assert.NotNull((await service.Records.GetAsync("idle", default))!.Value.Record.Sleeping);
    }
}

/// <summary>The environments' janitor, on a manual clock.</summary>
public sealed class EnvironmentCollectorTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static State.EnvironmentRecord Record(string name, DateTimeOffset expires) => new(
        name, "alice", "feature", string.Empty, ["https://phabricator.example/T1"], "alice", Start.AddDays(-10), expires,
        Core.Environments.EnvironmentBase.Follow, null, null, ["eqiad"], ["mw-web"]);

    [Fact]
    public async Task Expired_environments_go_and_owners_are_warned_once_per_threshold()
    {
        await using var farm = await FarmHarness.StartAsync();
        var clock = new ManualClock(Start);
        var service = new EnvironmentService(farm.Model, farm.Files, farm.Clusters, farm.Store, clock);
        await service.Records.CreateAsync(Record("soon", Start.AddDays(2)), default);
        await service.Records.CreateAsync(Record("later", Start.AddDays(10)), default);
        await service.Records.CreateAsync(Record("gone", Start.AddHours(-1)), default);
        var file = Path.Combine(farm.Root, "warnings.jsonl");
        var collector = new EnvironmentCollector(service, clock);
        var options = new CollectOptions(CollectOptions.DefaultWarnings, new NotificationSink(file, null), DryRun: true);

        // A dry run says what it would do and does nothing.
        var planned = await collector.CollectAsync(options, "janitor", default);
        Assert.Equal(["gone: delete (expired 2026-11-30 11:00 UTC)", "soon: warn alice: expires 2026-12-02 12:00 UTC (within 3d)"], planned.Select(a => $"{a.Environment}: {a.What}").Order(StringComparer.Ordinal));
        Assert.Equal(3, (await service.Records.ListAsync(default)).Count);
        Assert.False(File.Exists(file));

        await collector.CollectAsync(options with { DryRun = false }, "janitor", default);
        Assert.Equal(["later", "soon"], (await service.Records.ListAsync(default)).Select(r => r.Name).Order(StringComparer.Ordinal));
        var line = Assert.Single(File.ReadAllLines(file));
        Assert.Contains("\"environment\":\"soon\"", line, StringComparison.Ordinal);
        Assert.Contains("within 3d", line, StringComparison.Ordinal);

        // Once per threshold: the next run is quiet, and the one-day warning comes when it is due.
        Assert.Empty(await collector.CollectAsync(options with { DryRun = false }, "janitor", default));
        clock.Advance(TimeSpan.FromHours(36));
        var next = Assert.Single(await collector.CollectAsync(options with { DryRun = false }, "janitor", default));
        Assert.Equal("warn alice: expires 2026-12-02 12:00 UTC (within 1d)", next.What);
        Assert.Equal(2, File.ReadAllLines(file).Length);
        Assert.Equal(["1d", "3d"], (await service.Records.GetAsync("soon", default))!.Value.Record.Warned.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_environment_is_not_warned_of_a_threshold_as_long_as_its_life_and_is_told_an_extension_its_class_allows()
    {
        await using var farm = await FarmHarness.StartAsync();
        var clock = new ManualClock(Start);
        var service = new EnvironmentService(farm.Model, farm.Files, farm.Clusters, farm.Store, clock);
        await service.Records.CreateAsync(Record("ci-run", Start.AddHours(23)) with { Purpose = "ci", CreatedAt = Start }, default);
        await service.Records.CreateAsync(Record("feature", Start.AddHours(20)) with { CreatedAt = Start.AddDays(-25) }, default);
        var file = Path.Combine(farm.Root, "warnings.jsonl");
        var options = new CollectOptions(CollectOptions.DefaultWarnings, new NotificationSink(file, null), DryRun: false);

        // The one-day ci environment made now is not warned; the feature environment is, and told to extend by a week,
        // which its 30-day cap (counted from now) allows.
        var actions = await new EnvironmentCollector(service, clock).CollectAsync(options, "janitor", default);
        Assert.Equal(["feature: warn alice: expires 2026-12-01 08:00 UTC (within 1d)"], actions.Select(a => $"{a.Environment}: {a.What}"));
        Assert.Contains("capstan env extend feature --by 7d", File.ReadAllText(file), StringComparison.Ordinal);

        // A ci environment (a one-day cap, counted from now) with an hour left is told the 23 hours it may still get, not a week.
        clock.Advance(TimeSpan.FromHours(22));
        await service.Records.CreateAsync(Record("ci-long", Start.AddHours(23)) with { Purpose = "ci", CreatedAt = Start.AddHours(-2) }, default);
        File.Delete(file);
        var ciActions = await new EnvironmentCollector(service, clock).CollectAsync(options, "janitor", default);
        Assert.Contains(ciActions, a => a.Environment == "ci-long");
        Assert.DoesNotContain(ciActions, a => a.Environment == "ci-run");
        Assert.Contains("capstan env extend ci-long --by 23h", File.ReadAllText(file), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_warning_goes_to_the_webhook_as_a_post()
    {
        await using var farm = await FarmHarness.StartAsync();
        var clock = new ManualClock(Start);
        var service = new EnvironmentService(farm.Model, farm.Files, farm.Clusters, farm.Store, clock);
        await service.Records.CreateAsync(Record("soon", Start.AddHours(20)), default);
        var port = Testing.EtcdServer.FreePort();
        using var listener = new System.Net.HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var received = Task.Run(async () =>
        {
            var context = await listener.GetContextAsync();
            using var reader = new StreamReader(context.Request.InputStream);
            var body = await reader.ReadToEndAsync();
            context.Response.StatusCode = 204;
            context.Response.Close();
            return (context.Request.HttpMethod, body);
        });

        var actions = await new EnvironmentCollector(service, clock).CollectAsync(
            new CollectOptions(CollectOptions.DefaultWarnings, new NotificationSink(null, new Uri($"http://127.0.0.1:{port}/hooks/capstan")), DryRun: false), "janitor", default);
        Assert.Equal("warn alice: expires 2026-12-01 08:00 UTC (within 1d)", Assert.Single(actions).What);
        var (method, body) = await received;
        Assert.Equal("POST", method);
        Assert.Contains("\"owner\":\"alice\"", body, StringComparison.Ordinal);
    }
}
