using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Kubernetes;
using Capstan.LocalCluster;
using Capstan.Testing;

namespace Capstan.Bench;

/// <summary>
/// Applies N ConfigMaps through Capstan's client to the embedded API server over loopback HTTP, then lists them back,
/// and prints requests per second and p50/p99 latency of the applies; then lists and gets N pods as JSON and as protobuf. The client's request budget is lifted so that the
/// figure is the server's and client's speed, not the rate limiter's.
/// </summary>
internal static class ApiBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = int.Parse(BenchTools.Option(args, "--objects") ?? "1000", CultureInfo.InvariantCulture);
        var parallel = int.Parse(BenchTools.Option(args, "--parallel") ?? "8", CultureInfo.InvariantCulture);
        await using var server = await LocalClusterServer.StartAsync(new LocalClusterOptions(), default);
        await using var client = new KubeClient(new ClusterConnection(server.Url, System.Text.Encoding.UTF8.GetBytes(server.CertificateAuthorityPem!), Token: server.AdminToken), new KubeClientOptions { Qps = 1_000_000, Burst = 1_000_000 });
        await client.ApplyAsync(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = "bench" } }, false, false, default);

        var latencies = new double[count];
        var next = -1;
        var total = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var obj = new JsonObject
                {
                    ["apiVersion"] = "v1",
                    ["kind"] = "ConfigMap",
                    ["metadata"] = new JsonObject { ["name"] = $"cm-{i:D5}", ["namespace"] = "bench", ["labels"] = new JsonObject { ["bench"] = "yes" } },
                    ["data"] = new JsonObject { ["index"] = i.ToString(CultureInfo.InvariantCulture), ["payload"] = new string('x', 512) },
                };
                var sw = Stopwatch.StartNew();
                await client.ApplyAsync(obj, false, false, default);
                latencies[i] = sw.Elapsed.TotalMilliseconds;
            }
        })));
        var applySeconds = total.Elapsed.TotalSeconds;

        var listWatch = Stopwatch.StartNew();
        var list = await client.ListAsync("v1", "ConfigMap", "bench", "bench=yes", default);
        var listMs = listWatch.Elapsed.TotalMilliseconds;
        if (list.Items.Count != count)
        {
            throw new InvalidOperationException($"listed {list.Items.Count} of {count} objects");
        }

        Array.Sort(latencies);
        Console.WriteLine($"apply: {count} ConfigMaps with {parallel} in flight in {applySeconds * 1000:F0} ms: {count / applySeconds:F0} requests/s, p50 {latencies[count / 2]:F2} ms, p99 {latencies[(int)(count * 0.99)]:F2} ms");
        Console.WriteLine($"list: {count} objects back by label selector in {listMs:F1} ms");
        await PodsAsync(server, client, count, parallel);
        return 0;
    }

    private const string Json = "application/json";
    private const string Protobuf = "application/vnd.kubernetes.protobuf,application/json";

    /// <summary>
    /// Lists and gets of N running pods, as JSON and as protobuf (what client-go's typed clients ask for), side by side
    /// in one run: the median of the rounds after a first one (which encodes each pod once), and the first one alone.
    /// </summary>
    private static async Task PodsAsync(LocalClusterServer server, KubeClient client, int count, int parallel)
    {
        await client.ApplyAsync(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = "pods" } }, false, false, default);
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                await client.ApplyAsync(Pod(i), false, false, default);
            }
        })));

        // Measured once every pod runs, so that no status write changes what is read between rounds.
        while ((await client.ListAsync("v1", "Pod", "pods", null, default)).Items.Count(p => p["status"]?["phase"]?.GetValue<string>() == "Running") < count)
        {
            await Task.Delay(100);
        }

        using var http = Cluster.TrustingHttp(server.Url, server.CertificateAuthorityPem!, server.AdminToken);
        const int Rounds = 15;
        foreach (var (what, path, times) in new[] { ("list", "/api/v1/namespaces/pods/pods", 1), ("get", "/api/v1/namespaces/pods/pods/web-{0:D5}", count) })
        {
            var results = new Dictionary<string, (double First, double Median, long Bytes)>();
            foreach (var accept in new[] { Json, Protobuf })
            {
                var rounds = new List<double>();
                long bytes = 0;
                for (var round = 0; round <= Rounds; round++)
                {
                    var sw = Stopwatch.StartNew();
                    bytes = 0;
                    for (var i = 0; i < times; i++)
                    {
                        using var request = new HttpRequestMessage(HttpMethod.Get, string.Format(CultureInfo.InvariantCulture, path, i));
                        request.Headers.TryAddWithoutValidation("Accept", accept);
                        using var response = await http.SendAsync(request);
                        response.EnsureSuccessStatusCode();
                        bytes += (await response.Content.ReadAsByteArrayAsync()).Length;
                    }

                    rounds.Add(sw.Elapsed.TotalMilliseconds);
                }

                var warm = rounds.Skip(1).Order().ToList();
                results[accept] = (rounds[0], warm[warm.Count / 2], bytes);
            }

            var (json, protobuf) = (results[Json], results[Protobuf]);
            var label = what == "list" ? $"list of {count} pods" : $"{count} gets of one pod";
            Console.WriteLine($"{label}: json {json.Median:F1} ms ({json.Bytes / 1024} KiB), protobuf {protobuf.Median:F1} ms ({protobuf.Bytes / 1024} KiB): " +
                $"protobuf/json {protobuf.Median / json.Median:F2}x time, {(double)protobuf.Bytes / json.Bytes:F2}x bytes; first round json {json.First:F1} ms, protobuf {protobuf.First:F1} ms");
        }
    }

    private static JsonObject Pod(int i) => (JsonObject)JsonNode.Parse("""
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web-NAME", "namespace": "pods", "labels": {"app": "mediawiki", "release": "main", "index": "INDEX"}},
         "spec": {"containers": [
           {"name": "php", "image": "docker-registry.wikimedia.org/mediawiki:1", "ports": [{"containerPort": 9000, "name": "fcgi"}],
            "env": [{"name": "SERVERGROUP", "value": "mw-web"}, {"name": "FCGI_MODE", "value": "FCGI_TCP"}],
            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 5}},
           {"name": "httpd", "image": "docker-registry.wikimedia.org/httpd:2", "ports": [{"containerPort": 8080, "name": "http"}],
            "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "400Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}]}}
        """.Replace("NAME", i.ToString("D5", CultureInfo.InvariantCulture), StringComparison.Ordinal).Replace("INDEX", i.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))!;
}
