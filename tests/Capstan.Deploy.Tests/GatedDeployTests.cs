using System.Net;
using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Deploy.Gates;
using Capstan.Kubernetes;

namespace Capstan.Deploy.Tests;

/// <summary>
/// Deploys through the gate after the canaries, judged by a real Prometheus that scrapes the embedded cluster's
/// simulated pod traffic, with the deploy's announcements sent to a test webhook (and to one that always fails).
/// </summary>
public sealed class GatedDeployTests
{
    private const string Image = "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-12-0{0}-090000-publish";

    private static string Gates(Uri prometheus, string hook, string failingHook) => $$"""

        prometheus:
          url: {{prometheus}}
        gates:
          canaries:
            soak: 6s
            interval: 1s
            min-samples: 3
            checks:
              - name: canary errors
                prometheus: 'sum(increase(mediawiki_http_requests_total{namespace="{namespace}",release="{release}",datacenter="{datacenter}",code=~"5.."}[{window}]))'
                max: 20
                top: 'topk(5, sum by (release, pod, code) (increase(mediawiki_http_requests_total{namespace="{namespace}",release="{release}",datacenter="{datacenter}",code=~"5.."}[{window}])))'
        notify:
          file: .capstan/announcements.jsonl
          webhooks: ["{{hook}}", "{{failingHook}}"]
          retries: 1
        """;

    [Fact]
    public async Task A_clean_canary_passes_its_gate_and_production_follows_a_bad_one_is_rolled_back_held_and_announced()
    {
        await using var farm = await FarmHarness.StartAsync();
        await using var prometheus = await PrometheusServer.StartAsync([new ScrapeTarget("eqiad", farm.Clusters.LocalServer("eqiad")!)], TimeSpan.FromSeconds(1));
        using var hook = new Webhook(200);
        using var failing = new Webhook(500);
        farm.Write("capstan.yaml", WithoutTopLevel(File.ReadAllText(Path.Combine(farm.Root, "capstan.yaml")), "prometheus", "gates", "notify") + Gates(prometheus.Url, hook.Url, failing.Url));
        using var http = new HttpClient();
        var selection = new RenderSelection("eqiad", "mw-web");

        // The first deploy installs: nothing runs yet to protect, so no gate opens.
        var (install, _) = await DeployAsync(farm, http, prometheus.Url, selection);
        Assert.True(install.Succeeded, install.Cause);
        Assert.Empty(install.Gates);
        await prometheus.WaitForTargetsUpAsync(1);

        // A clean new image, on the canary first: a plan whose last stage is the canaries' opens no gate. The deploy of
        // the whole group then leaves the canary as it is, but judges it, since it runs what production moves to: six
        // seconds of soak, every check under its limit, then production goes.
        SetImage(farm, 1);
        var (canaryFirst, _) = await DeployAsync(farm, http, prometheus.Url, selection with { Release = "canary" });
        Assert.True(canaryFirst.Succeeded, canaryFirst.Cause);
        Assert.Empty(canaryFirst.Gates);
        var (clean, cleanEvents) = await DeployAsync(farm, http, prometheus.Url, selection);
        Assert.True(clean.Succeeded, clean.Cause + "\n" + string.Join("\n", cleanEvents.Events.Select(e => e.Message)));
        Assert.Equal(ReleaseState.Unchanged, clean.Releases.Single(r => r.Id.Release == "canary").State);
        var passed = Assert.Single(clean.Gates);
        Assert.True(passed.Passed, string.Join("\n", passed.Explain()));
        Assert.Contains(passed.Latest, s => s.Release == new ReleaseId("eqiad", "mw-web", "canary") && s.Result == SampleResult.Pass);
        Assert.Equal(ReleaseState.Done, clean.Releases.Single(r => r.Id.Release == "main").State);
        Assert.Contains(cleanEvents.Events, e => e.Gate is { Sampled: true });
        Assert.Equal(string.Format(null, Image, 1), await AppImageAsync(farm, "main"));

        // A bad image: its pods answer half their requests with errors. The gate fails during the soak, production is
        // never touched, the canary goes back to the clean image and is held there.
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new JsonObject { ["type"] = "errors", ["image"] = "2026-12-02-", ["ratio"] = 0.5 });
        SetImage(farm, 2);
        var (bad, badEvents) = await DeployAsync(farm, http, prometheus.Url, selection);

        Assert.False(bad.Succeeded);
        var failure = bad.GateFailure!;
        Assert.Equal("canary errors", failure.Failure!.Check);
        Assert.True(failure.Failure.Value > 20, failure.Failure.ToString());
        Assert.True(failure.Elapsed < TimeSpan.FromSeconds(6), $"the gate failed only after {failure.Elapsed}");
        Assert.Contains("""release="canary",datacenter="eqiad",code=~"5.."}""", failure.Failure.Expression, StringComparison.Ordinal);
        Assert.NotEmpty(failure.Failure.Top);
        Assert.All(failure.Failure.Top, s => Assert.Equal("canary", s.Labels["release"]));
        Assert.Equal(ReleaseState.RolledBack, bad.Releases.Single(r => r.Id.Release == "canary").State);
        Assert.Equal(ReleaseState.NotStarted, bad.Releases.Single(r => r.Id.Release == "main").State);
        Assert.Equal(string.Format(null, Image, 1), await AppImageAsync(farm, "main"));
        Assert.Equal(string.Format(null, Image, 1), await AppImageAsync(farm, "canary"));
        var lines = badEvents.Events.Select(e => e.Message).ToList();
        Assert.Contains(lines, l => l.StartsWith("  expression: sum(increase(mediawiki_http_requests_total{", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  top series:", StringComparison.Ordinal));

        var hold = Assert.Single(await new HoldStore(farm.Store, farm.Model.Project).ListAsync(default));
        Assert.Equal(new ReleaseId("eqiad", "mw-web", "canary"), hold.Release);
        Assert.Equal(string.Format(null, Image, 2), hold.Image);
        Assert.StartsWith("gate after canaries failed", hold.Reason, StringComparison.Ordinal);

        // The announcements reached the webhook and the file; the failing webhook was retried, reported, and failed nothing.
        var events = hook.Received.Select(b => b["event"]!.GetValue<string>()).ToList();
        Assert.Equal(["deploy.start", "deploy.finish", "deploy.start", "deploy.finish", "deploy.start", "gate.pass", "deploy.finish", "deploy.start", "gate.fail", "deploy.finish", "hold"], events);
        var finish = hook.Received.Last(b => b["event"]!.GetValue<string>() == "deploy.finish");
        Assert.Matches(@"^test@[^:]+: Deploy \[[^\]]+\] of mw-web failed and was rolled back: eqiad/mw-web/canary: gate after canaries failed after \d+s of its 6s soak", finish["text"]!.GetValue<string>());
        Assert.Matches(@"^test@[^:]+: Synchronized mw-web: test \(duration: \d\dm \d\ds\)$", hook.Received[6]["text"]!.GetValue<string>());
        Assert.Equal(2 * events.Count, failing.Received.Count);
        Assert.Contains(badEvents.Events, e => e.Message.StartsWith("warning: announcement to webhook http://127.0.0.1:", StringComparison.Ordinal) && e.Message.EndsWith("failed after 2 tries: HTTP 500", StringComparison.Ordinal));
        Assert.Equal(events.Count, File.ReadAllLines(Path.Combine(farm.Root, ".capstan", "announcements.jsonl")).Length);
    }

    /// <summary>A capstan.yaml without some of its top-level keys (with their comments): this test writes its own.</summary>
    private static string WithoutTopLevel(string yaml, params string[] keys)
    {
        var kept = new List<string>();
        var pending = new List<string>();
        var skipping = false;
        foreach (var line in yaml.Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                pending.Add(line);
                continue;
            }

            if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
            {
                skipping = keys.Any(k => line.StartsWith(k + ":", StringComparison.Ordinal));
            }

            if (!skipping)
            {
                kept.AddRange(pending);
                kept.Add(line);
            }

            pending.Clear();
        }

        return string.Join('\n', kept).TrimEnd() + "\n";
    }

    private static void SetImage(FarmHarness farm, int day)
    {
        var file = $"images:\n  mediawiki: {string.Format(null, Image, day)}\n";
        farm.Write("deploy/images/mw-web/canary.yaml", file);
        farm.Write("deploy/images/default.yaml", file);
    }

    private static async Task<(DeployResult Result, EventLog Events)> DeployAsync(FarmHarness farm, HttpClient http, Uri prometheus, RenderSelection selection)
    {
        var service = new DeployService(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters, farm.Store, TimeProvider.System)
        {
            Announcer = new Announcer(farm.Model.Notify, farm.Root, http, TimeProvider.System) { RetryPause = TimeSpan.FromMilliseconds(10) },
        };
        var options = new ExecutorOptions
        {
            Actor = "test",
            Reason = "test",
            Gates = new StageGates(farm.Model, new GateRunner(new PrometheusClient(http, prometheus), http, TimeProvider.System)),
        };
        var request = new DeployRequest(selection, true, false, 20, options);
        var prepared = await service.PrepareAsync(request, farm.State, default);
        var events = new EventLog();
        return (await service.RunAsync(prepared.Plan, options, events, default), events);
    }

    private static async Task<string> AppImageAsync(FarmHarness farm, string release)
    {
        var deployment = await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "mw-web", $"mw-web.eqiad.{release}"), default);
        return (deployment!["spec"]!["template"]!["spec"]!["containers"] as JsonArray)!
            .Single(c => c!["name"]!.GetValue<string>().EndsWith("-app", StringComparison.Ordinal))!["image"]!.GetValue<string>();
    }

    /// <summary>A webhook on a free loopback port that keeps every body it receives and answers a fixed status.</summary>
    private sealed class Webhook : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly List<JsonObject> _received = [];
        private readonly Task _loop;

        public Webhook(int status)
        {
            Url = $"http://127.0.0.1:{EtcdServer.FreePort()}/hook/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _loop = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await _listener.GetContextAsync();
                    }
                    catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                    {
                        return;
                    }

                    using (var reader = new StreamReader(context.Request.InputStream))
                    {
                        var body = JsonNode.Parse(await reader.ReadToEndAsync()) as JsonObject;
                        lock (_received)
                        {
                            _received.Add(body!);
                        }
                    }

                    context.Response.StatusCode = status;
                    context.Response.Close();
                }
            });
        }

        public string Url { get; }

        public IReadOnlyList<JsonObject> Received
        {
            get
            {
                lock (_received)
                {
                    return [.. _received];
                }
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
    }
}
