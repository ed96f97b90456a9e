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
}
