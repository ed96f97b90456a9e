using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Kubernetes;
using Capstan.LocalCluster;

namespace Capstan.Bench;

/// <summary>
/// Applies N ConfigMaps through Capstan's client to the embedded API server over loopback HTTP, then lists them back,
/// and prints requests per second and p50/p99 latency of the applies. The client's request budget is lifted so that the
/// figure is the server's and client's speed, not the rate limiter's.
/// </summary>
internal static class ApiBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = int.Parse(BenchTools.Option(args, "--objects") ?? "1000", CultureInfo.InvariantCulture);
        var parallel = int.Parse(BenchTools.Option(args, "--parallel") ?? "8", CultureInfo.InvariantCulture);
        await using var server = await LocalClusterServer.StartAsync(new LocalClusterOptions(), default);
        await using var client = new KubeClient(new ClusterConnection(server.Url), new KubeClientOptions { Qps = 1_000_000, Burst = 1_000_000 });
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
        return 0;
    }
}
