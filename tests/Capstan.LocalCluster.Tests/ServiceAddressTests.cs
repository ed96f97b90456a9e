using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Cluster IPs and node ports, allocated and checked as kube-apiserver does: unique per cluster, kept across restarts.</summary>
public sealed class ServiceAddressTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "capstan-addresses-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private static JsonObject Service(string name, string ns, string type = "ClusterIP", int? nodePort = null) => Cluster.Yaml(
        $"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  type: {type}\n  selector: {{app: {name}}}\n  ports:\n    - {{name: https, port: 4450{(nodePort is { } p ? $", nodePort: {p}" : string.Empty)}}}\n");

    private static async Task<JsonObject> CreateAsync(Cluster cluster, JsonObject service) =>
        await cluster.Client.ApplyAsync(service, false, false, default);

    [Fact]
    public async Task A_node_port_in_use_is_refused_in_kube_apiservers_words_and_one_left_out_is_allocated()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-web");
        await cluster.NamespaceAsync("dev1--mw-web");
        await CreateAsync(cluster, Service("tls", "mw-web", "NodePort", 30450));

        var taken = await Assert.ThrowsAsync<KubeInvalidException>(() => CreateAsync(cluster, Service("tls", "dev1--mw-web", "NodePort", 30450)));
        Assert.Equal(422, taken.StatusCode);
        Assert.Contains("spec.ports[0].nodePort: Invalid value: 30450: provided port is already allocated", taken.Message, StringComparison.Ordinal);

        var outside = await Assert.ThrowsAsync<KubeInvalidException>(() => CreateAsync(cluster, Service("tls", "dev1--mw-web", "NodePort", 8443)));
        Assert.Contains("provided port is not in the valid range. The range of valid ports is 30000-32767", outside.Message, StringComparison.Ordinal);
        var clusterIp = await Assert.ThrowsAsync<KubeInvalidException>(() => CreateAsync(cluster, Service("tls", "dev1--mw-web", "ClusterIP", 30451)));
        Assert.Contains("may not be used when `type` is 'ClusterIP'", clusterIp.Message, StringComparison.Ordinal);
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "Service", "dev1--mw-web", "tls"), default));

        // Left out, the cluster allocates one (the lowest free), and keeps it when the Service is applied again without it.
        var allocated = await CreateAsync(cluster, Service("tls", "dev1--mw-web", "NodePort"));
        var port = allocated["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>();
        Assert.InRange(port, 30000, 32767);
        Assert.NotEqual(30450, port);
        var again = await CreateAsync(cluster, Service("tls", "dev1--mw-web", "NodePort"));
        Assert.Equal(port, again["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>());
        Assert.NotEqual(allocated["spec"]!["clusterIP"]!.GetValue<string>(), (await cluster.Client.GetAsync(new ObjectRef("v1", "Service", "mw-web", "tls"), default))!["spec"]!["clusterIP"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cluster_ips_are_unique_per_cluster_and_kept_across_a_restart()
    {
        var options = new LocalClusterOptions { DataDirectory = Path.Combine(_root, "eqiad") };
        var first = new List<string>();
        await using (var cluster = await Cluster.StartAsync(options))
        {
            await cluster.NamespaceAsync("app");
            for (var i = 0; i < 3; i++)
            {
                first.Add((await CreateAsync(cluster, Service($"s{i}", "app")))["spec"]!["clusterIP"]!.GetValue<string>());
            }

            // A second cluster in the same process allocates from its own range: its first address is the first one's.
            await using var other = await Cluster.StartAsync();
            await other.NamespaceAsync("app");
            Assert.Equal(first[0], (await CreateAsync(other, Service("s0", "app")))["spec"]!["clusterIP"]!.GetValue<string>());
        }

        Assert.Equal(3, first.Distinct().Count());
        await using (var restarted = await Cluster.StartAsync(options))
        {
            var after = (await CreateAsync(restarted, Service("s3", "app")))["spec"]!["clusterIP"]!.GetValue<string>();
            Assert.DoesNotContain(after, first);
            var taken = await Assert.ThrowsAsync<KubeInvalidException>(() => CreateAsync(restarted, Cluster.Yaml($"apiVersion: v1\nkind: Service\nmetadata: {{name: s4, namespace: app}}\nspec:\n  clusterIP: {first[1]}\n  ports: [{{port: 80}}]\n")));
            Assert.Contains("provided IP is already allocated", taken.Message, StringComparison.Ordinal);
        }
    }
}
