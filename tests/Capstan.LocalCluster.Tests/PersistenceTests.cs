using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>How a cluster directory is kept across restarts.</summary>
public sealed class PersistenceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-persist-" + Guid.NewGuid().ToString("N"), "eqiad");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private async Task<JsonObject?> GetAsync(ObjectRef reference)
    {
        await using var host = await LocalClusterHost.OpenAsync(_dir, new LocalClusterOptions(), requireOwnServer: true, default);
        await using var client = new KubeClient(new ClusterConnection(host.Url, System.Text.Encoding.UTF8.GetBytes(host.CertificateAuthorityPem), Token: host.Token), new KubeClientOptions());
        return await client.GetAsync(reference, default);
    }

    [Fact]
    public async Task A_cluster_kept_as_an_objects_json_snapshot_is_imported_once_with_its_resource_versions()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(Path.Combine(_dir, "objects.json"), """
            {"resourceVersion": 41, "objects": [
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app", "uid": "u1", "resourceVersion": "3", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "app", "uid": "u2", "resourceVersion": "40", "creationTimestamp": "2026-01-01T00:00:00Z"}, "data": {"a": "b"}}
            ]}
            """);

        var kept = await GetAsync(new ObjectRef("v1", "ConfigMap", "app", "kept"));
        Assert.Equal("b", kept!["data"]!["a"]!.GetValue<string>());
        Assert.Equal("40", kept["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.False(File.Exists(Path.Combine(_dir, "objects.json")));
        Assert.True(File.Exists(Path.Combine(_dir, "cluster.db")));

        // Restarted from the database alone; new writes continue above the imported versions.
        await using var host = await LocalClusterHost.OpenAsync(_dir, new LocalClusterOptions(), requireOwnServer: true, default);
        await using var client = new KubeClient(new ClusterConnection(host.Url, System.Text.Encoding.UTF8.GetBytes(host.CertificateAuthorityPem), Token: host.Token), new KubeClientOptions());
        Assert.NotNull(await client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "kept"), default));
        var created = await client.ApplyAsync(Cluster.Yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new, namespace: app}\n"), false, false, default);
        Assert.True(long.Parse(created["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > 41);
    }

    [Fact]
    public async Task Events_older_than_the_ttl_are_gone_after_a_restart_and_their_space_is_given_back()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        var options = new LocalClusterOptions { DataDirectory = _dir, Time = clock };
        var database = Path.Combine(_dir, "cluster.db");
        await using (var cluster = await Cluster.StartAsync(options))
        {
            await cluster.ApplyAsync("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: default}\ndata: {a: b}\n");
            await PostEventsAsync(cluster, "old", 400, clock.GetUtcNow());
        }

        var full = new FileInfo(database).Length;
        clock.Advance(TimeSpan.FromMinutes(50));
        await using (var cluster = await Cluster.StartAsync(options))
        {
            await PostEventsAsync(cluster, "new", 3, clock.GetUtcNow());
        }

        // 70 minutes after the first Events and 20 after the last: only the last are kept.
        clock.Advance(TimeSpan.FromMinutes(20));
        await using (var cluster = await Cluster.StartAsync(options))
        {
            var (code, list) = await GetJsonAsync(cluster, "/api/v1/namespaces/default/events");
            Assert.Equal(200, code);
            Assert.Equal(["new-0", "new-1", "new-2"], list["items"]!.AsArray().Select(e => e!["metadata"]!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal));
            Assert.NotNull(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "default", "kept"), default));
        }

        Assert.True(new FileInfo(database).Length < full / 2, $"the database kept {new FileInfo(database).Length} of {full} bytes");
    }

    private static async Task PostEventsAsync(Cluster cluster, string prefix, int count, DateTimeOffset at)
    {
        using var http = cluster.Http();
        var stamp = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < count; i++)
        {
            var body = new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Event",
                ["metadata"] = new JsonObject { ["name"] = $"{prefix}-{i}", ["namespace"] = "default" },
                ["involvedObject"] = new JsonObject { ["kind"] = "ConfigMap", ["namespace"] = "default", ["name"] = "kept" },
                ["reason"] = "Tested",
                ["message"] = new string('m', 2000),
                ["type"] = "Normal",
                ["count"] = 1,
                ["firstTimestamp"] = stamp,
                ["lastTimestamp"] = stamp,
            };
            using var response = await http.PostAsync("/api/v1/namespaces/default/events", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        }
    }

    private static async Task<(int Code, JsonObject Body)> GetJsonAsync(Cluster cluster, string path)
    {
        using var http = cluster.Http();
        using var response = await http.GetAsync(path);
        return ((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }
}
