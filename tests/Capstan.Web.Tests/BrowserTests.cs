using Capstan.LocalCluster;
using Microsoft.Playwright;

namespace Capstan.Web.Tests;

/// <summary>The dashboard in real Chromium: what a person sees and does. Each test saves screenshots of its pages.</summary>
[Collection(DashboardCollection.Name)]
public sealed class BrowserTests(DashboardFarm farm, Browser browser)
{
    internal static async Task SignInAsync(IPage page, string token)
    {
        await page.GotoAsync("/login");
        await page.FillAsync("input[name=token]", token);
        await page.ClickAsync("#login button[type=submit]");
        await page.WaitForSelectorAsync("#signed-in");
    }

    /// <summary>Submits a form and waits for the page it leads to; a page with an error fails the test with its message.</summary>
    internal static async Task SubmitAsync(IPage page, string form)
    {
        // The page before the click is marked; the wait ends when a new document (the form's answer) has loaded.
        await page.EvaluateAsync("() => { window.capstanOldPage = true; }");
        await page.ClickAsync($"{form} button[type=submit]");
        await page.WaitForFunctionAsync("() => !window.capstanOldPage && document.readyState === 'complete'");
        if (await page.Locator("#error").CountAsync() > 0)
        {
            Assert.Fail($"{form}: {await page.Locator("#error").InnerTextAsync()}");
        }
    }

    [Fact]
    public async Task The_overview_shows_the_farms_matrix_and_a_deploy_from_the_cli_appears_live_then_the_version_mismatch_banner()
    {
        var (context, page, problems) = await browser.OpenAsync(farm.Url);
        await using var _ = context;
        await page.GotoAsync("/");
        await page.WaitForSelectorAsync("#matrix");
        var rows = await page.Locator("#matrix tbody tr th").AllInnerTextsAsync();
        Assert.Contains("mw-web/main", rows);
        Assert.Contains("mw-api-int/main", rows);
        Assert.Contains("mw-debug/pinkunicorn", rows);
        // The example farm's canaries already run the next train's image.
        Assert.Contains("2026-11-21-101204-publish", await page.Locator("#version-mismatch").InnerTextAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain("2026-11-27-101500-publish", await page.Locator("#version-mismatch").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("primary", await page.Locator(".card[data-dc=eqiad]").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "overview");

        // A deploy from the CLI, in another process: mw-debug's pinkunicorn in codfw to another image, its pods slow to
        // become ready so that the deploy is seen running.
        farm.Write("deploy/images/mw-debug/pinkunicorn.yaml", "images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-27-101500-publish\n");
        farm.Clusters.LocalServer("codfw")!.Faults.Add(new FaultInjector.PodFault(
            FaultInjector.PodFaultKind.Slow, "mw-debug", LocalCluster.Store.LabelQuery.Parse("release=pinkunicorn"), "release=pinkunicorn", TimeSpan.FromSeconds(4)));
        try
        {
            await page.GotoAsync("/deploy");
            await page.WaitForSelectorAsync("#deploy-state[data-state=idle]");
            using var cli = farm.StartCli("deploy", "--yes", "--dc", "codfw", "--namespace", "mw-debug", "--release", "pinkunicorn", "--reason", "try the new branch", "--actor", "carol");
            await page.WaitForSelectorAsync("#deploy-state[data-state=running]");
            Assert.Contains("codfw/mw-debug/pinkunicorn", await page.Locator("table.stages").InnerTextAsync(), StringComparison.Ordinal);
            Assert.Matches(@"Testservers\s+0/1 done", await page.Locator("#stage-grid").InnerTextAsync());
            Assert.Equal("try the new branch", await page.Locator("#deploy-reason").InnerTextAsync());
            Assert.Matches(@"^Phases: open [0-9.]+ s, plan [0-9.]+ s", await page.Locator("#deploy-phases").InnerTextAsync());
            await Browser.ScreenshotAsync(page, "deploy-running");
            var (code, _, error) = await cli.WaitAsync();
            Assert.True(code == 0, error);
            await page.WaitForSelectorAsync("#deploy-state[data-state=idle]");
            Assert.Contains("carol: succeeded", await page.Locator("#last-deploy").InnerTextAsync(), StringComparison.Ordinal);
            var finished = page.Locator("#last-deploy time");
            Assert.Matches(@"^(just now|\d+ s ago)$", await finished.InnerTextAsync());
            Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", await finished.GetAttributeAsync("title"));
            Assert.Matches(@"^Phases: open [0-9.]+ s, plan [0-9.]+ s, stage testservers [0-9.]+ s$", await page.Locator("#last-phases").InnerTextAsync());
            await Browser.ScreenshotAsync(page, "deploy-finished");
        }
        finally
        {
            farm.Clusters.LocalServer("codfw")!.Faults.Clear();
            File.Delete(Path.Combine(farm.Root, "deploy/images/mw-debug/pinkunicorn.yaml"));
        }

        await page.GotoAsync("/");
        var banner = page.Locator("#version-mismatch");
        await banner.WaitForAsync();
        var text = await banner.InnerTextAsync();
        Assert.Contains("different MediaWiki versions", text, StringComparison.Ordinal);
        Assert.Contains("2026-11-27-101500-publish", text, StringComparison.Ordinal);
        Assert.Contains("codfw/mw-debug/pinkunicorn", text, StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "overview-mismatch");

        // The release page, and the diff between its two revisions.
        await page.ClickAsync("#matrix a[href='/releases/codfw/mw-debug/pinkunicorn']");
        await page.WaitForSelectorAsync("#revisions");
        Assert.Equal(2, await page.Locator("#revisions tbody tr").CountAsync());
        await Browser.ScreenshotAsync(page, "release");
        await page.ClickAsync("#revisions a");
        Assert.Contains("2026-11-27-101500-publish", await page.Locator("#diff").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "release-diff");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task Environments_are_created_extended_and_deleted_through_the_forms_with_a_token()
    {
        var (context, page, problems) = await browser.OpenAsync(farm.Url);
        await using var _ = context;
        await SignInAsync(page, DashboardFarm.AliceToken);
        await page.GotoAsync("/environments");
        await page.FillAsync("#create input[name=name]", "qa-web");
        await page.SelectOptionAsync("#create select[name=purpose]", "ci");
        await page.FillAsync("#create input[name=expires]", "12h");
        await page.FillAsync("#create input[name=description]", "checking the search box");
        foreach (var group in new[] { "mw-api-ext", "mw-api-int" })
        {
            await page.UncheckAsync($"#create input[name=group][value={group}]");
        }

        await Browser.ScreenshotAsync(page, "environments-form");
        await SubmitAsync(page, "#create");
        Assert.EndsWith("/environments/qa-web", page.Url, StringComparison.Ordinal);
        Assert.Equal("alice", await page.Locator("dd[data-key=owner]").InnerTextAsync());
        Assert.Equal("awake", await page.Locator("dd[data-key=state]").InnerTextAsync());
        Assert.Contains("only in production: mw-web/canary", await page.Locator("main").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "environment");

        var before = (await farm.GetJsonAsync("/api/v1/environments/qa-web"))["expires"]!.GetValue<string>();
        await page.FillAsync("#extend input[name=by]", "6h");
        await SubmitAsync(page, "#extend");
        await page.WaitForSelectorAsync("#history td:has-text('extend to')");
        Assert.NotEqual(before, (await farm.GetJsonAsync("/api/v1/environments/qa-web"))["expires"]!.GetValue<string>());

        // Bad input in a form gets the CLI's message and changes nothing.
        await page.FillAsync("#extend input[name=by]", "1w");
        await page.ClickAsync("#extend button[type=submit]");
        Assert.Equal("'1w' is not a duration (a whole number and d, h or m: 7d, 12h, 90m)", await page.Locator("#error").InnerTextAsync());

        await page.GotoAsync("/environments");
        Assert.Equal(1, await page.Locator("#environments tr[data-name=qa-web]").CountAsync());
        await Browser.ScreenshotAsync(page, "environments");
        await page.GotoAsync("/environments/qa-web");
        await SubmitAsync(page, "#delete");
        Assert.EndsWith("/environments", page.Url, StringComparison.Ordinal);
        Assert.Equal(0, await page.Locator("#environments tr[data-name=qa-web]").CountAsync());
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "qa-web");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task The_same_forms_without_a_token_are_refused_and_change_nothing()
    {
        var (context, page, problems) = await browser.OpenAsync(farm.Url);
        await using var _ = context;
        await page.GotoAsync("/environments");
        Assert.Equal("Sign in", await page.Locator("#sign-in").InnerTextAsync());
        await page.FillAsync("#create input[name=name]", "qa-web");
        await page.FillAsync("#create input[name=owner]", "mallory");
        await page.SelectOptionAsync("#create select[name=purpose]", "ci");
        await page.FillAsync("#create input[name=expires]", "12h");
        await page.ClickAsync("#create button[type=submit]");
        Assert.Equal("refused: sign in with a token to make changes; nothing was changed", await page.Locator("#error").InnerTextAsync());
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "qa-web");
        await Browser.ScreenshotAsync(page, "environments-refused");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task A_state_change_made_from_the_cli_shows_in_history()
    {
        var (code, _, error) = await farm.RunCliAsync("state", "set", "read-only", "codfw", "database maintenance", "--reason", "db upgrade T4242", "--actor", "dora");
        Assert.True(code == 0, error);
        try
        {
            var (context, page, problems) = await browser.OpenAsync(farm.Url);
            await using var _ = context;
            await page.GotoAsync("/history");
            await page.FillAsync("input[name=actor]", "dora");
            await SubmitAsync(page, "form.filter");
            Assert.Contains("/history?actor=dora", page.Url, StringComparison.Ordinal);
            var rows = page.Locator("#state-changes tbody tr");
            Assert.Equal(1, await rows.CountAsync());
            var row = await rows.InnerTextAsync();
            Assert.Contains("db upgrade T4242", row, StringComparison.Ordinal);
            Assert.Contains("database maintenance", row, StringComparison.Ordinal);
            await Browser.ScreenshotAsync(page, "history");

            await page.GotoAsync("/");
            Assert.Contains("read-only", await page.Locator(".card[data-dc=codfw]").InnerTextAsync(), StringComparison.Ordinal);
            await page.GotoAsync("/switchover");
            await Browser.ScreenshotAsync(page, "switchover");
            Assert.Empty(problems);
        }
        finally
        {
            Assert.Equal(0, (await farm.RunCliAsync("state", "set", "read-only", "codfw", "false", "--reason", "db upgrade done", "--actor", "dora")).ExitCode);
        }
    }

    [Fact]
    public async Task No_page_is_wider_than_a_1280_pixel_window()
    {
        var (context, page, problems) = await browser.OpenAsync(farm.Url);
        await using var _ = context;
        await SignInAsync(page, DashboardFarm.AliceToken);
        var pages = new[] { "/", "/deploy", "/jobs", "/history", "/environments", "/train", "/switchover", "/releases/eqiad/mw-web/main" };
        var wide = new List<string>();
        foreach (var path in pages)
        {
            await page.GotoAsync(path);
            var (content, window) = (await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"), await page.EvaluateAsync<int>("() => window.innerWidth"));
            if (content > window)
            {
                wide.Add($"{path}: {content} px");
            }
        }

        await page.GotoAsync("/releases/eqiad/mw-web/main");
        Assert.Matches(@"^352/352 ready · 352 Running$", await page.Locator("#pod-summary").InnerTextAsync());
        Assert.False(await page.Locator("#pods").IsVisibleAsync());
        await page.ClickAsync("#all-pods summary");
        Assert.Equal(352, await page.Locator("#pods tbody tr").CountAsync());
        await Browser.ScreenshotAsync(page, "release-pods");
        await page.GotoAsync("/jobs");
        await Browser.ScreenshotAsync(page, "jobs");
        Assert.Empty(wide);
        Assert.Empty(problems);
    }
}
