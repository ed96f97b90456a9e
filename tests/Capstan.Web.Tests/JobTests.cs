using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.LocalCluster;
using Microsoft.Playwright;

namespace Capstan.Web.Tests;

/// <summary>Actions from the dashboard as jobs, in Chromium and over the API: shown, confirmed, run with a live log, and refused by role, token and origin.</summary>
[Collection(DashboardCollection.Name)]
public sealed class JobTests(DashboardFarm farm, Browser browser)
{
    private const string NextImage = "images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-27-101500-publish\n";

    private static readonly ReleaseId Pink = new("eqiad", "mw-debug", "pinkunicorn");

    private FaultInjector Faults => farm.Clusters.LocalServer("eqiad")!.Faults;

    private void SlowTestServer(TimeSpan delay) =>
        Faults.Add(new FaultInjector.PodFault(FaultInjector.PodFaultKind.Slow, "mw-debug", LocalCluster.Store.LabelQuery.Parse("release=pinkunicorn"), "release=pinkunicorn", delay));

    /// <summary>Sends a job's preview or start over the API and returns the status and body.</summary>
    private static async Task<(HttpStatusCode Status, JsonObject Body)> PostJobAsync(HttpClient client, string path, JsonObject body)
    {
        using var response = await client.PostAsJsonAsync(path, body);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    [Fact]
    public async Task A_deployer_deploys_one_release_follows_its_log_live_then_rolls_it_back_and_sees_the_hold()
    {
        farm.Write("deploy/images/mw-debug/pinkunicorn.yaml", NextImage);
        SlowTestServer(TimeSpan.FromSeconds(3));
        try
        {
            var (context, page, problems) = await browser.OpenAsync(farm.Url);
            await using var _ = context;
            await BrowserTests.SignInAsync(page, DashboardFarm.AliceToken);
            await page.GotoAsync("/jobs");
            await page.SelectOptionAsync("#new-deploy select[name=dc]", "eqiad");
            await page.SelectOptionAsync("#new-deploy select[name=ns]", "mw-debug");
            await page.FillAsync("#new-deploy input[name=release]", "pinkunicorn");
            await page.FillAsync("#new-deploy input[name=reason]", "T4242: the next branch on the test server");
            await BrowserTests.SubmitAsync(page, "#new-deploy");

            // The plan first, as deploy --dry-run has it: one release, its image old → new.
            Assert.Equal(1, await page.Locator("#plan tbody tr").CountAsync());
            var row = page.Locator("#plan tr[data-release='eqiad/mw-debug/pinkunicorn']");
            Assert.Contains("2026-11-20-083015-publish", await row.Locator("td.images .old").InnerTextAsync(), StringComparison.Ordinal);
            Assert.Contains("2026-11-27-101500-publish", await row.Locator("td.images .new").InnerTextAsync(), StringComparison.Ordinal);
            Assert.Equal("Deploy 1 releases", await page.Locator("#confirm button").InnerTextAsync());
            await Browser.ScreenshotAsync(page, "job-preview");

            // Confirmed: the job's page, its log following the deploy without a reload.
            await BrowserTests.SubmitAsync(page, "#confirm");
            Assert.Matches("/jobs/[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$", page.Url);
            Assert.Equal("running", await page.Locator("#job-state").GetAttributeAsync("data-state"));
            var linesAtLoad = (await page.Locator("#job-log").InnerTextAsync()).Split('\n').Length;
            await page.WaitForSelectorAsync("#job-state[data-state=succeeded]");
            var log = await page.Locator("#job-log").InnerTextAsync();
            Assert.True(log.Split('\n').Length > linesAtLoad, log);
            Assert.Contains("eqiad/mw-debug/pinkunicorn: deployed", log, StringComparison.Ordinal);
            Assert.StartsWith("deployed: plan ", await page.Locator("#job-live").InnerTextAsync(), StringComparison.Ordinal);
            await Browser.ScreenshotAsync(page, "job-finished");
            // Its timeline on the deploy page: the one release that moved, applied then rolled out, on the critical path.
            await page.GotoAsync("/deploy");
            var bar = page.Locator("#last-timeline g.bar[data-release='eqiad/mw-debug/pinkunicorn']");
            Assert.Equal("bar critical", await bar.GetAttributeAsync("class"));
            Assert.Matches(@"applied in [0-9.]+ s, rolled out in [0-9.]+ s \(Done\); on the critical path", await bar.Locator("title").TextContentAsync());
            await Browser.ScreenshotAsync(page, "deploy-timeline");
            var revision = (await farm.GetJsonAsync("/api/v1/releases/eqiad/mw-debug/pinkunicorn"))["revisions"]!.AsArray()[0]!;
            Assert.Equal("alice", revision["actor"]!.GetValue<string>());
            Assert.Equal("T4242: the next branch on the test server", revision["reason"]!.GetValue<string>());

            // Roll it back from the jobs page: the revisions first, then the job, then the hold on the overview.
            await page.GotoAsync("/jobs");
            Assert.Contains("succeeded", await page.Locator("#jobs tbody tr").First.InnerTextAsync(), StringComparison.Ordinal);
            await page.FillAsync("#new-rollback input[name=target]", "eqiad/mw-debug/pinkunicorn");
            await page.FillAsync("#new-rollback input[name=reason]", "T4242: errors on the test server");
            await BrowserTests.SubmitAsync(page, "#new-rollback");
            Assert.Matches(@"r(\d+) → r\d+", await page.Locator("#rollbacks tr[data-release='eqiad/mw-debug/pinkunicorn']").InnerTextAsync());
            await BrowserTests.SubmitAsync(page, "#confirm");
            await page.WaitForSelectorAsync("#job-state[data-state=succeeded]");
            Assert.Contains("is held at revision", await page.Locator("#job-log").InnerTextAsync(), StringComparison.Ordinal);
            await page.GotoAsync("/");
            var held = await page.Locator("#holds").InnerTextAsync();
            Assert.Contains("eqiad/mw-debug/pinkunicorn", held, StringComparison.Ordinal);
            Assert.Contains("alice", held, StringComparison.Ordinal);
            Assert.Contains("2026-11-27-101500-publish", held, StringComparison.Ordinal);
            Assert.Empty(problems);
        }
        finally
        {
            Faults.Clear();
            File.Delete(Path.Combine(farm.Root, "deploy/images/mw-debug/pinkunicorn.yaml"));
            await new Capstan.Deploy.HoldStore(farm.Store, farm.Model.Project).ReleaseAsync(Pink, default);
        }
    }

    [Fact]
    public async Task A_slow_deploy_cancelled_from_the_dashboard_starts_nothing_more_and_the_cli_resumes_it()
    {
        farm.Write("deploy/images/mw-debug/pinkunicorn.yaml", NextImage);
        farm.Write("deploy/images/mw-api-int/main.yaml", NextImage);
        SlowTestServer(TimeSpan.FromSeconds(6));
        try
        {
            var (context, page, problems) = await browser.OpenAsync(farm.Url);
            await using var _ = context;
            await BrowserTests.SignInAsync(page, DashboardFarm.BobToken);
            await page.GotoAsync("/jobs");
            await page.SelectOptionAsync("#new-deploy select[name=dc]", "eqiad");
            await page.FillAsync("#new-deploy input[name=reason]", "the next branch in eqiad");
            await BrowserTests.SubmitAsync(page, "#new-deploy");
            Assert.Equal(2, await page.Locator("#plan tbody tr").CountAsync());
            await BrowserTests.SubmitAsync(page, "#confirm");
            var deployJob = page.Url;

            // The test server rolls out slowly; the deploy is cancelled meanwhile.
            Assert.Equal("running", await page.Locator("#job-state").GetAttributeAsync("data-state"));
            await page.FillAsync("#cancel-job input[name=reason]", "wrong branch");
            await BrowserTests.SubmitAsync(page, "#cancel-job");
            Assert.StartsWith("asked plan ", await page.Locator("#job-live").InnerTextAsync(), StringComparison.Ordinal);
            await page.GotoAsync(deployJob);
            await page.WaitForSelectorAsync("#job-state[data-state=cancelled]");
            var log = await page.Locator("#job-log").InnerTextAsync();
            Assert.Contains("eqiad/mw-debug/pinkunicorn: deployed", log, StringComparison.Ordinal);
            Assert.Contains("eqiad/mw-api-int/main: not started — cancelled by bob: wrong branch", log, StringComparison.Ordinal);
            Assert.Contains("run the same deploy again to continue", await page.Locator("#job-live").InnerTextAsync(), StringComparison.Ordinal);
            await Browser.ScreenshotAsync(page, "job-cancelled");

            // The CLI continues it: the test server is done, the rest goes out.
            var (code, output, error) = await farm.RunCliAsync("deploy", "--yes", "--dc", "eqiad", "--reason", "resume after the cancel", "--actor", "bob", "-o", "json");
            Assert.True(code == 0, error);
            var plan = JsonNode.Parse(output.Split('\n')[0])!["releases"]!.AsArray();
            Assert.Equal("noop", plan.Single(r => r!["release"]!.GetValue<string>() == "eqiad/mw-debug/pinkunicorn")!["change"]!.GetValue<string>());
            Assert.Equal("upgrade", plan.Single(r => r!["release"]!.GetValue<string>() == "eqiad/mw-api-int/main")!["change"]!.GetValue<string>());
            Assert.Equal("resume after the cancel", (await farm.GetJsonAsync("/api/v1/releases/eqiad/mw-api-int/main"))["revisions"]!.AsArray()[0]!["reason"]!.GetValue<string>());
            Assert.Empty(problems);
        }
        finally
        {
            Faults.Clear();
            File.Delete(Path.Combine(farm.Root, "deploy/images/mw-debug/pinkunicorn.yaml"));
            File.Delete(Path.Combine(farm.Root, "deploy/images/mw-api-int/main.yaml"));

            // Whatever happened above, the dashboard's deploy ends before the farm is put back.
            await Capstan.Testing.Cluster.EventuallyAsync(
                async () => await Capstan.Deploy.DeployProgress.RunningAsync(farm.Store, farm.Model.Project, default) is null ? "idle" : null, "the dashboard's deploy to end", 120);
            await farm.DeployAsync(new RenderSelection("eqiad"), "back to the farm's images");
        }
    }

    [Fact]
    public async Task A_viewer_is_refused_every_action_a_deployer_cannot_lock_and_a_form_from_elsewhere_changes_nothing()
    {
        // Every kind of job, shown or started, is refused to a viewer with who they are and the role it needs.
        using var viewer = farm.Client(DashboardFarm.ViewerToken);
        foreach (var kind in new[] { "deploy", "rollback", "cancel", "lock", "unlock" })
        {
            foreach (var path in new[] { "/api/v1/jobs/preview", "/api/v1/jobs" })
            {
                var (status, body) = await PostJobAsync(viewer, path, new JsonObject { ["kind"] = kind, ["reason"] = "just looking", ["target"] = Pink.ToString(), ["digest"] = "0" });
                Assert.True(status == HttpStatusCode.Forbidden, $"{kind} {path}: {(int)status} {body}");
                Assert.StartsWith("refused: vic is a viewer, and ", body["error"]!.GetValue<string>(), StringComparison.Ordinal);
            }
        }

        // A deployer deploys but does not lock the farm; an admin does, confirmed by what the preview showed.
        using var alice = farm.Client(DashboardFarm.AliceToken);
        var lockJob = new JsonObject { ["kind"] = "lock", ["reason"] = "db maintenance" };
        var (refused, why) = await PostJobAsync(alice, "/api/v1/jobs/preview", lockJob);
        Assert.Equal(HttpStatusCode.Forbidden, refused);
        Assert.Equal("refused: alice is a deployer, and lock deploys needs the admin role (the tokens file's third column); nothing was changed", why["error"]!.GetValue<string>());
        using var ada = farm.Client(DashboardFarm.AdminToken);
        var (_, preview) = await PostJobAsync(ada, "/api/v1/jobs/preview", lockJob);
        lockJob["digest"] = preview["digest"]!.GetValue<string>();
        var (created, job) = await PostJobAsync(ada, "/api/v1/jobs", lockJob);
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Equal("ada", job["actor"]!.GetValue<string>());
        try
        {
            Assert.Equal("ada", (await farm.GetJsonAsync("/api/v1/overview"))["lock"]!["actor"]!.GetValue<string>());

            // A deploy whose confirmation does not carry the digest of what was shown does not start.
            var (stale, staleBody) = await PostJobAsync(alice, "/api/v1/jobs", new JsonObject { ["kind"] = "deploy", ["dc"] = "eqiad", ["reason"] = "go", ["digest"] = "0000" });
            Assert.Equal(HttpStatusCode.BadRequest, stale);
            Assert.StartsWith("what this would do changed since it was shown", staleBody["error"]!.GetValue<string>(), StringComparison.Ordinal);

            // In Chromium: the viewer's form is refused with the same words; a form on another site changes nothing.
            var (context, page, problems) = await browser.OpenAsync(farm.Url);
            await using var _ = context;
            await BrowserTests.SignInAsync(page, DashboardFarm.ViewerToken);
            await page.GotoAsync("/jobs");
            Assert.Contains("you can read, not act", await page.Locator("#role-note").InnerTextAsync(), StringComparison.Ordinal);
            await page.FillAsync("#lock-form input[name=reason]", "let me in");
            await page.ClickAsync("#lock-form button[type=submit]");
            Assert.StartsWith("refused: vic is a viewer, and unlock deploys needs the admin role", await page.Locator("#error").InnerTextAsync(), StringComparison.Ordinal);

            await BrowserTests.SignInAsync(page, DashboardFarm.AdminToken);
            await context.RouteAsync("http://elsewhere.example/**", route => route.FulfillAsync(new RouteFulfillOptions
            {
                ContentType = "text/html",
                Body = $"<form method=post action=\"{farm.Url}jobs\"><input type=hidden name=kind value=unlock><input type=hidden name=reason value=x><input type=hidden name=digest value=unlock><button>win a prize</button></form>",
            }));
            await page.GotoAsync("http://elsewhere.example/");
            await page.ClickAsync("button");
            await page.WaitForSelectorAsync("#error");
            Assert.StartsWith("refused: ", await page.Locator("#error").InnerTextAsync(), StringComparison.Ordinal);
            Assert.Equal("ada", (await farm.GetJsonAsync("/api/v1/overview"))["lock"]!["actor"]!.GetValue<string>());
            await Browser.ScreenshotAsync(page, "job-refused");
            Assert.Empty(problems);
        }
        finally
        {
            var unlock = new JsonObject { ["kind"] = "unlock", ["reason"] = "maintenance done", ["digest"] = "unlock" };
            Assert.Equal(HttpStatusCode.Created, (await PostJobAsync(ada, "/api/v1/jobs", unlock)).Status);
        }

        Assert.Null((await farm.GetJsonAsync("/api/v1/overview"))["lock"]);
    }
}
