using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Capstan.LocalCluster.Tests;

/// <summary>The simulated traffic of MediaWiki pods, as a Prometheus reads it at <c>/capstan/pod-metrics</c>, and the faults that change it.</summary>
public sealed partial class PodTrafficTests
{
    private static string Release(string name, int replicas, string image) => $$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: mw-web.eqiad.{{{name}}}, namespace: mw-web}
        spec:
          replicas: {{{replicas}}}
          selector: {matchLabels: {app: mediawiki, release: {{{name}}}}}
          template:
            metadata: {labels: {app: mediawiki, release: {{{name}}}, deployment: mw-web}}
            spec:
              containers: [{name: mediawiki-{{{name}}}-app, image: "{{{image}}}"}]
        """;

    [GeneratedRegex("""^mediawiki_http_requests_total\{namespace="(?<ns>[^"]+)",pod="(?<pod>[^"]+)",app="mediawiki",release="(?<release>[^"]+)",deployment="mw-web",code="(?<code>\d+)"\} (?<value>\d+)$""", RegexOptions.Multiline)]
    private static partial Regex Sample();

    private static Dictionary<(string Release, string Code), long> Totals(string text) =>
        Sample().Matches(text).GroupBy(m => (m.Groups["release"].Value, m.Groups["code"].Value))
            .ToDictionary(g => g.Key, g => g.Sum(m => long.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture)));

    [Fact]
    public async Task Ready_mediawiki_pods_count_requests_and_an_image_fault_raises_their_errors()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-web");
        await cluster.ApplyAsync(Release("main", 4, "registry.example/mediawiki:good"));
        await cluster.ApplyAsync(Release("canary", 2, "registry.example/mediawiki:bad"));
        await cluster.RolledOutAsync("mw-web", "mw-web.eqiad.main", "main ready");
        await cluster.RolledOutAsync("mw-web", "mw-web.eqiad.canary", "canary ready");

        // The pods' traffic on a clock of its own, moved by the test; the endpoint serves the same counters over HTTP.
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var traffic = new PodTraffic(cluster.Server.Store, cluster.Server.Faults, clock, seed: 7);
        Assert.All(Totals(traffic.Text()).Values, v => Assert.Equal(0, v));
        clock.Advance(TimeSpan.FromMinutes(10));
        var clean = Totals(traffic.Text());
        cluster.Server.Faults.Add(new JsonObject { ["type"] = "errors", ["image"] = "mediawiki:bad", ["ratio"] = 0.3 });
        cluster.Server.Faults.Add(new JsonObject { ["type"] = "traffic", ["selector"] = "release=main", ["rps"] = 1 });
        clock.Advance(TimeSpan.FromMinutes(10));
        var faulty = Totals(traffic.Text());

        // Ten minutes clean: 20 requests a second per pod (4 and 2 pods), 0.2% of them errors.
        Assert.InRange(Requests(clean, "main"), 4 * 12_000 * 0.97, 4 * 12_000 * 1.03);
        Assert.InRange(Requests(clean, "canary"), 2 * 12_000 * 0.97, 2 * 12_000 * 1.03);
        Assert.InRange(Errors(clean, "canary") / (double)Requests(clean, "canary"), 0.0005, 0.005);

        // Ten more with the faults: the bad image's pods err 30% of the time; main gets one request a second per pod.
        var canaryRequests = Requests(faulty, "canary") - Requests(clean, "canary");
        var canaryErrors = Errors(faulty, "canary") - Errors(clean, "canary");
        Assert.InRange(canaryErrors / (double)canaryRequests, 0.27, 0.33);
        Assert.True(faulty[("canary", "503")] > clean[("canary", "503")], "some errors are the proxy's 503s");
        Assert.InRange(Requests(faulty, "main") - Requests(clean, "main"), 4 * 600 * 0.85, 4 * 600 * 1.15);

        var served = await (await cluster.Http().GetAsync("/capstan/pod-metrics")).Content.ReadAsStringAsync();
        Assert.StartsWith("# HELP mediawiki_http_requests_total", served, StringComparison.Ordinal);
        Assert.Equal(6 * 3, Sample().Matches(served).Count);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await cluster.Http(token: "wrong").GetAsync("/capstan/pod-metrics")).StatusCode);

        static long Requests(Dictionary<(string Release, string Code), long> totals, string release) => totals.Where(kv => kv.Key.Release == release).Sum(kv => kv.Value);
        static long Errors(Dictionary<(string Release, string Code), long> totals, string release) => totals.Where(kv => kv.Key.Release == release && kv.Key.Code[0] == '5').Sum(kv => kv.Value);
    }

    [Fact]
    public async Task A_fault_without_pods_to_aim_at_or_with_a_ratio_out_of_range_is_refused()
    {
        await using var cluster = await Cluster.StartAsync();
        using var http = cluster.Http();

        var aimless = await http.PostAsync("/capstan/faults", new StringContent("""{"type":"errors","ratio":0.5}""", System.Text.Encoding.UTF8, "application/json"));
        var outOfRange = await http.PostAsync("/capstan/faults", new StringContent("""{"type":"errors","selector":"release=canary","ratio":2}""", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(System.Net.HttpStatusCode.BadRequest, aimless.StatusCode);
        Assert.Contains("say which pods: a namespace, a selector or an image", await aimless.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, outOfRange.StatusCode);
        Assert.Contains("ratio 2 is not between 0 and 1", await outOfRange.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
