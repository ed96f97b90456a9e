using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.State;

namespace Capstan.Deploy.Tests;

/// <summary>
/// An environment reaches none of production's backends or secrets: a leak of any kind is refused at create with the
/// file and line that carried it, and one made from the example farm carries none of production's endpoints or
/// secret values in any live object.
/// </summary>
public sealed class EnvironmentIsolationTests
{
    private const string Name = "alice-test";

    private static async Task<FarmHarness> StartAsync()
    {
        var farm = await FarmHarness.StartAsync();
        Testing.FarmCopy.WriteEnvironmentSecrets(farm.Root, Name);
        return farm;
    }

    private static EnvironmentService Service(FarmHarness farm) => new(farm.Model, farm.Files, farm.Clusters, farm.Store, TimeProvider.System);

    private static EnvironmentRequest Request(params string[] groups) =>
        new(Name, "alice", "ci", "isolation", [], TimeSpan.FromHours(12), false, null, ["eqiad"], groups.Length == 0 ? ["mw-web"] : groups, [], "alice");

    public static TheoryData<string, string, string, string> Leaks => new()
    {
        // backend kind, file written, its text, where the refusal must point and what it must name
        { "memcached (values)", "environments/alice-test.yaml", "mcrouter:\n  pools:\n    eqiad-servers: [10.64.0.80:11211]\n", "environments/alice-test.yaml:3:|memcached endpoint 10.64.0.80:11211" },
        { "mesh (values)", "environments/alice-test.yaml", "mesh:\n  listeners:\n    - {name: sessionstore, port: 6006, upstream: sessionstore.discovery.wmnet:8081}\n", "environments/alice-test.yaml:3:|sessionstore endpoint sessionstore.discovery.wmnet" },
        { "kafka (values)", "environments/alice-test.yaml", "logging:\n  kafka-brokers: [kafka-logging1001.eqiad.wmnet:9093]\n", "environments/alice-test.yaml:2:|logging endpoint kafka-logging1001.eqiad.wmnet" },
        { "udp2log (values)", "environments/alice-test.yaml", "logging:\n  udp2log: mwlog1002.eqiad.wmnet:8420\n", "environments/alice-test.yaml:2:|udp2log endpoint mwlog1002.eqiad.wmnet" },
        { "redis (values)", "environments/alice-test.yaml", "php:\n  env:\n    WMF_DATACENTER_LOCAL_REDIS: rdb1011.eqiad.wmnet:6379\n", "environments/alice-test.yaml:3:|redis endpoint rdb1011.eqiad.wmnet" },
        { "redis (manifest)", "environments/backends/redis/leak.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: upstream}\ndata:\n  replicaof: rdb1011.eqiad.wmnet 6379\n", "environments/backends/redis/leak.yaml:5:|redis endpoint rdb1011.eqiad.wmnet" },
        { "database (secret)", "environments/alice-test.secrets.yaml", "secrets:\n  tls: {certificate: CERT-OF-ALICE-TEST, key: KEY-OF-ALICE-TEST}\n  private:\n    PrivateSettings.php: |\n      <?php\n      $wgDBserver = 'db1001.eqiad.wmnet';\n", "environments/alice-test.secrets.yaml:4:|database endpoint db1001.eqiad.wmnet" },
    };

    [Theory]
    [MemberData(nameof(Leaks))]
    public async Task A_production_endpoint_that_leaks_in_is_refused_at_the_line_that_carried_it_and_nothing_is_made(string kind, string path, string text, string expected)
    {
        await using var farm = await StartAsync();
        farm.Write(path, text);
        var service = Service(farm);

        var refused = await Assert.ThrowsAsync<RepoValidationException>(() => service.CreateAsync(Request(), farm.State, new EventLog(), default));

        var (at, what) = (expected.Split('|')[0], expected.Split('|')[1]);
        Assert.True(
            refused.Diagnostics.Any(d => d.ToString().StartsWith(at, StringComparison.Ordinal) && d.Message.Contains(what, StringComparison.Ordinal)),
            $"{kind}: no error at {at} naming {what}:\n{string.Join("\n", refused.Diagnostics)}");
        Assert.All(refused.Diagnostics, d => Assert.Contains("would reach production", d.Message, StringComparison.Ordinal));
        Assert.Empty(await service.Records.ListAsync(default));
        Assert.DoesNotContain((await farm.Clusters["eqiad"].ListAsync("v1", "Namespace", null, null, default)).Items, n => n["metadata"]!["name"]!.GetValue<string>().StartsWith(Name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_production_endpoint_given_with_set_is_refused_naming_the_setting()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        var refused = await Assert.ThrowsAsync<RepoValidationException>(() => service.CreateAsync(Request() with { Settings = ["mail.smarthost=mx-out1001.wikimedia.org"] }, farm.State, new EventLog(), default));
        Assert.Contains(refused.Diagnostics, d => d.ToString().StartsWith("(--set mail.smarthost):1:", StringComparison.Ordinal) && d.Message.Contains("mail endpoint mx-out1001.wikimedia.org", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_copy_of_productions_secrets_is_refused_by_key_and_line_without_showing_a_value()
    {
        await using var farm = await StartAsync();
        var production = File.ReadAllText(Path.Combine(farm.Root, "private/secrets.yaml"));
        farm.Write($"environments/{Name}.secrets.yaml", production.Replace("example-not-a-real-password", "a-new-password-of-its-own", StringComparison.Ordinal));
        var service = Service(farm);

        var refused = await Assert.ThrowsAsync<RepoValidationException>(() => service.CreateAsync(Request(), farm.State, new EventLog(), default));

        Assert.Contains(refused.Diagnostics, d => d.Location.File == $"environments/{Name}.secrets.yaml" && d.Message.Contains("production's secret secrets.tls.key", StringComparison.Ordinal));
        Assert.Contains(refused.Diagnostics, d => d.Message.Contains("secret value inside secrets.private.PrivateSettings.php", StringComparison.Ordinal));
        var shown = string.Join("\n", refused.Diagnostics);
        Assert.DoesNotContain("0123456789abcdef0123456789abcdef", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", shown, StringComparison.Ordinal);
        Assert.Empty(await service.Records.ListAsync(default));
    }

    [Fact]
    public async Task An_environment_of_the_example_farm_carries_none_of_productions_endpoints_or_secrets_in_any_live_object()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        var (record, _) = await service.CreateAsync(Request("mw-web", "mw-api-int"), farm.State, new EventLog(), default);
        var needles = EnvironmentIsolation.Needles(farm.Model, farm.Files, record);
        Assert.Contains(needles, n => n.Secret);
        Assert.Contains(needles, n => n.Text == "10.64.0.80:11211");

        var kinds = new[] { ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "Deployment"), ("networking.k8s.io/v1", "NetworkPolicy") };
        var scanned = 0;
        var hits = new List<IsolationHit>();
        foreach (var ns in new[] { "alice-test--mw-web", "alice-test--mw-api-int", "alice-test--backends" })
        {
            foreach (var (apiVersion, kind) in kinds)
            {
                foreach (var obj in (await farm.Clusters["eqiad"].ListAsync(apiVersion, kind, ns, null, default)).Items)
                {
                    scanned++;
                    hits.AddRange(IsolationScan.Scan($"{ns}/{kind} {obj["metadata"]!["name"]}", obj, needles));
                }
            }
        }

        Assert.True(scanned > 20, $"only {scanned} objects");
        Assert.Empty(hits.Select(h => h.ToString()));

        // The same scan finds production's own objects full of them: it is not blind.
        var production = new FarmRenderer(farm.Model, farm.Files).Render(new RenderSelection("eqiad", "mw-web", "main"), farm.State);
        var productionHits = production.Releases.SelectMany(r => r.Objects).SelectMany(o => IsolationScan.Scan(o.Metadata.Name, Core.Kubernetes.KubeSerializer.ToNode(o), needles)).ToList();
        Assert.Contains(productionHits, h => h.Needle.Text == "10.64.0.80:11211");
        Assert.Contains(productionHits, h => h.Needle.Secret && h.Key.StartsWith("data[", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_web_environments_run_beside_production_on_one_cluster_each_with_a_node_port_of_its_own()
    {
        await using var farm = await StartAsync();
        Testing.FarmCopy.WriteEnvironmentSecrets(farm.Root, "bob-test");
        var (_, production) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"), includeNeeds: true);
        Assert.True(production!.Succeeded, production.Cause);
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);
        await service.CreateAsync(Request() with { Name = "bob-test", Owner = "bob", Actor = "bob" }, farm.State, new EventLog(), default);

        var ports = new List<int>();
        var addresses = new List<string>();
        foreach (var ns in new[] { "mw-web", "alice-test--mw-web", "bob-test--mw-web" })
        {
            var tls = (await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Service", ns, "mediawiki-main-tls-service"), default))!;
            ports.Add(tls["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>());
            addresses.Add(tls["spec"]!["clusterIP"]!.GetValue<string>());
        }

        Assert.Equal(30450, ports[0]);
        Assert.Equal(3, ports.Distinct().Count());
        Assert.Equal(3, addresses.Distinct().Count());
    }

    [Fact]
    public async Task A_kubectl_edit_inside_an_environment_is_reported_by_its_drift_from_managed_fields()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        await service.CreateAsync(Request(), farm.State, new EventLog(), default);
        Assert.Empty((await service.DriftAsync(Name, farm.State, default)).Live);

        await farm.Clusters["eqiad"].PatchAsync(
            new ObjectRef("apps/v1", "Deployment", "alice-test--mw-web", "mw-web.eqiad.main"),
            System.Text.Json.Nodes.JsonNode.Parse("""{"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}}""")!.AsObject(),
            "kubectl-edit",
            default);

        var live = Assert.Single((await service.DriftAsync(Name, farm.State, default)).Live);
        Assert.Equal("eqiad/mw-web/main: Deployment mw-web.eqiad.main .spec.template.spec.terminationGracePeriodSeconds changed by kubectl-edit", live);
    }

    [Fact]
    public async Task Cron_jobs_of_an_environment_are_suspended_until_its_own_state_enables_maintenance_whatever_production_does()
    {
        await using var farm = await StartAsync();
        var service = Service(farm);
        var production = farm.State with { MaintenanceEnabled = true };
        var (record, _) = await service.CreateAsync(Request("mw-cron"), production, new EventLog(), default);
        var own = service.State(record);
        Assert.False((await own.ReadRequiredAsync(default)).MaintenanceEnabled);

        async Task<List<(string Name, bool Suspended)>> CronJobsAsync() =>
            [.. (await farm.Clusters["eqiad"].ListAsync("batch/v1", "CronJob", "alice-test--mw-cron", null, default)).Items
                .Select(c => (c["metadata"]!["name"]!.GetValue<string>(), c["spec"]!["suspend"]!.GetValue<bool>()))];

        var jobs = await CronJobsAsync();
        Assert.Contains(jobs, j => j.Name == "purge-parser-cache");
        Assert.All(jobs, j => Assert.True(j.Suspended, j.Name));

        // Production switches over and keeps maintenance on: the environment's own state is untouched, and its jobs stay suspended.
        var productionState = new DynamicStateService(farm.Store, farm.Model.Project, [.. farm.Model.DatacenterNames], TimeProvider.System);
        await productionState.ChangeAsync(new StateChange.Initialize(production with { PrimaryDc = "codfw" }), "ops", "switchover", force: true, default);
        await service.RefreshAsync(Name, "alice", new EventLog(), default);
        Assert.All(await CronJobsAsync(), j => Assert.True(j.Suspended, j.Name));

        // Turned on for the environment itself, they run (all but the one the repo keeps suspended), against its own backends.
        await own.ChangeAsync(new StateChange.SetMaintenance(true), "alice", "try the purge job", force: false, default);
        await service.RefreshAsync(Name, "alice", new EventLog(), default);
        Assert.Equal(["wikidata-dispatch-changes"], (await CronJobsAsync()).Where(j => j.Suspended).Select(j => j.Name));
    }
}
