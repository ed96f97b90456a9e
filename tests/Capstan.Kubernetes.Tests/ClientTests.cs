using System.Net;
using System.Text;

namespace Capstan.Kubernetes.Tests;

/// <summary>The client against the embedded API server, over real HTTP.</summary>
public sealed class ClientTests
{
    private const string ConfigMapYaml = """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: app
          labels: {tier: web}
        data:
          a: "1"
        """;

    [Fact]
    public async Task Apply_creates_then_updates_and_an_identical_apply_changes_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var created = await cluster.ApplyAsync(ConfigMapYaml);
        var rv = created["metadata"]!["resourceVersion"]!.GetValue<string>();
        Assert.Equal("capstan", created["metadata"]!["managedFields"]![0]!["manager"]!.GetValue<string>());

        var again = await cluster.ApplyAsync(ConfigMapYaml);
        Assert.Equal(rv, again["metadata"]!["resourceVersion"]!.GetValue<string>());

        var changed = await cluster.ApplyAsync(ConfigMapYaml.Replace("a: \"1\"", "b: \"2\"", StringComparison.Ordinal));
        Assert.NotEqual(rv, changed["metadata"]!["resourceVersion"]!.GetValue<string>());

        // The field this manager stopped setting is removed, as server-side apply does.
        Assert.Null(changed["data"]!["a"]);
        Assert.Equal("2", changed["data"]!["b"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_field_owned_by_another_manager_is_a_conflict_unless_forced()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(ConfigMapYaml);
        await using var other = new KubeClient(cluster.Connection(), new KubeClientOptions { FieldManager = "kubectl" });
        var ex = await Assert.ThrowsAsync<KubeConflictException>(() =>
            other.ApplyAsync(Cluster.Yaml(ConfigMapYaml.Replace("a: \"1\"", "a: \"9\"", StringComparison.Ordinal)), false, false, default));
        Assert.Equal(".data.a", Assert.Single(ex.Causes).Field);
        Assert.Contains("conflict with \"capstan\"", ex.Message, StringComparison.Ordinal);

        var forced = await other.ApplyAsync(Cluster.Yaml(ConfigMapYaml.Replace("a: \"1\"", "a: \"9\"", StringComparison.Ordinal)), true, false, default);
        Assert.Equal("9", forced["data"]!["a"]!.GetValue<string>());
    }

    [Fact]
    public async Task Dry_run_apply_computes_without_storing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var preview = await cluster.Client.ApplyAsync(Cluster.Yaml(ConfigMapYaml), false, dryRun: true, default);
        Assert.Equal("1", preview["data"]!["a"]!.GetValue<string>());
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "settings"), default));
    }

    [Fact]
    public async Task Get_list_by_label_and_delete()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(ConfigMapYaml);
        await cluster.ApplyAsync(ConfigMapYaml.Replace("name: settings", "name: other", StringComparison.Ordinal).Replace("tier: web", "tier: db", StringComparison.Ordinal));
        var web = await cluster.Client.ListAsync("v1", "ConfigMap", "app", "tier=web", default);
        Assert.Equal(["settings"], web.Items.Select(i => i["metadata"]!["name"]!.GetValue<string>()));
        Assert.Equal(2, (await cluster.Client.ListAsync("v1", "ConfigMap", "app", "tier in (web,db)", default)).Items.Count);
        // != also matches objects without the label (the namespace's kube-root-ca.crt), as on kube-apiserver.
        var notWeb = (await cluster.Client.ListAsync("v1", "ConfigMap", "app", "tier!=web", default)).Items.Select(i => i["metadata"]!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("other", notWeb);
        Assert.DoesNotContain("settings", notWeb);

        var reference = new ObjectRef("v1", "ConfigMap", "app", "settings");
        Assert.NotNull(await cluster.Client.GetAsync(reference, default));
        Assert.True(await cluster.Client.DeleteAsync(reference, Propagation.Background, default));
        Assert.Null(await cluster.Client.GetAsync(reference, default));
        Assert.False(await cluster.Client.DeleteAsync(reference, Propagation.Background, default));
    }

    [Fact]
    public async Task Objects_in_a_missing_namespace_are_refused()
    {
        await using var cluster = await Cluster.StartAsync();
        var ex = await Assert.ThrowsAsync<KubeNotFoundException>(() => cluster.ApplyAsync(ConfigMapYaml));
        Assert.Equal("namespaces \"app\" not found", ex.Message);
    }

    [Fact]
    public async Task Invalid_names_are_422_with_causes()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var ex = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync(ConfigMapYaml.Replace("name: settings", "name: Bad_Name", StringComparison.Ordinal)));
        Assert.Equal("metadata.name", Assert.Single(ex.Causes).Field);
    }

    [Fact]
    public async Task Updates_with_a_stale_resource_version_are_conflicts()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var created = await cluster.ApplyAsync(ConfigMapYaml);
        await cluster.ApplyAsync(ConfigMapYaml.Replace("a: \"1\"", "a: \"2\"", StringComparison.Ordinal));
        using var http = cluster.Http();
        created["data"]!["a"] = "3";
        using var response = await http.PutAsync(new Uri("/api/v1/namespaces/app/configmaps/settings", UriKind.Relative), new StringContent(created.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("the object has been modified", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_sees_changes_in_order_and_resumes_from_a_resource_version()
    {
        await using var cluster = await Cluster.StartAsync(new LocalCluster.LocalClusterOptions { Timing = LocalCluster.SimulationTiming.Instant with { Bookmark = TimeSpan.FromMilliseconds(200) } });
        await cluster.NamespaceAsync("app");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        // Only the test's own objects (the cluster publishes kube-root-ca.crt in the namespace too).
        var start = (await cluster.Client.ListAsync("v1", "ConfigMap", "app", "tier=web", cts.Token)).ResourceVersion;
        var seen = new List<KubeWatchEvent>();
        var watching = Task.Run(async () =>
        {
            await foreach (var e in cluster.Client.WatchAsync("v1", "ConfigMap", "app", "tier=web", start, cts.Token))
            {
                seen.Add(e);
                if (seen.Count(x => x.Type != WatchEventType.Bookmark) == 3 && seen.Any(x => x.Type == WatchEventType.Bookmark))
                {
                    break;
                }
            }
        });
        await cluster.ApplyAsync(ConfigMapYaml);
        await cluster.ApplyAsync(ConfigMapYaml.Replace("a: \"1\"", "a: \"2\"", StringComparison.Ordinal));
        await cluster.Client.DeleteAsync(new ObjectRef("v1", "ConfigMap", "app", "settings"), Propagation.Background, cts.Token);
        await watching.WaitAsync(cts.Token);
        Assert.Equal([WatchEventType.Added, WatchEventType.Modified, WatchEventType.Deleted], seen.Where(e => e.Type != WatchEventType.Bookmark).Select(e => e.Type));

        // Resuming from the first event's version replays exactly what came after it.
        var from = seen.First(e => e.Type == WatchEventType.Added).ResourceVersion;
        var replay = new List<KubeWatchEvent>();
        using var cts2 = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var e in cluster.Client.WatchAsync("v1", "ConfigMap", "app", "tier=web", from, cts2.Token))
        {
            if (e.Type != WatchEventType.Bookmark)
            {
                replay.Add(e);
            }

            if (replay.Count == 2)
            {
                break;
            }
        }

        Assert.Equal([WatchEventType.Modified, WatchEventType.Deleted], replay.Select(e => e.Type));
    }

    [Fact]
    public async Task Server_errors_and_throttling_are_retried()
    {
        await using var cluster = await Cluster.StartAsync();
        cluster.Server.Faults.Add(new LocalCluster.FaultInjector.HttpFault(500, 3, TimeSpan.Zero, null, null));
        await cluster.NamespaceAsync("app");
        cluster.Server.Faults.Add(new LocalCluster.FaultInjector.HttpFault(429, 2, TimeSpan.Zero, 1, null));
        var started = DateTime.UtcNow;
        await cluster.ApplyAsync(ConfigMapYaml);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(1.5), "Retry-After: 1 was not honoured");
        Assert.NotNull(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "settings"), default));
    }

    [Fact]
    public async Task Persistent_failures_end_in_a_clear_error()
    {
        await using var cluster = await Cluster.StartAsync(clientOptions: new KubeClientOptions { MaxAttempts = 3, Backoff = TimeSpan.FromMilliseconds(1) });
        cluster.Server.Faults.Add(new LocalCluster.FaultInjector.HttpFault(503, 10, TimeSpan.Zero, null, null));
        var ex = await Assert.ThrowsAsync<KubeUnavailableException>(() => cluster.NamespaceAsync("app"));
        Assert.Contains("kept failing after 3 tries", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hung_request_times_out_with_a_clear_error()
    {
        await using var cluster = await Cluster.StartAsync(clientOptions: new KubeClientOptions { MaxAttempts = 2, RequestTimeout = TimeSpan.FromMilliseconds(300), Backoff = TimeSpan.FromMilliseconds(1) });
        cluster.Server.Faults.Add(new LocalCluster.FaultInjector.HttpFault(0, 5, TimeSpan.FromSeconds(30), null, null));
        var ex = await Assert.ThrowsAsync<KubeUnavailableException>(() => cluster.Client.GetAsync(new ObjectRef("v1", "Namespace", null, "x"), default));
        Assert.Contains("no answer from", ex.Message, StringComparison.Ordinal);
        Assert.Contains("within 0.3 s", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_kinds_are_found_through_discovery_or_refused()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var limits = await cluster.ApplyAsync("apiVersion: v1\nkind: LimitRange\nmetadata: {name: l, namespace: app}\nspec: {limits: [{type: Container}]}\n");
        Assert.Equal("LimitRange", limits["kind"]!.GetValue<string>());
        var ex = await Assert.ThrowsAsync<KubeNotFoundException>(() => cluster.ApplyAsync("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: app}\n"));
        Assert.Contains("no resource of kind Widget", ex.Message, StringComparison.Ordinal);
    }
}
