using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Capstan.Core.Rendering;

namespace Capstan.Web.Tests;

/// <summary>The JSON API, the pages' headers and /metrics, over real HTTP.</summary>
[Collection(DashboardCollection.Name)]
public sealed partial class ApiTests(DashboardFarm farm)
{
    [Fact]
    public async Task The_overview_and_releases_carry_what_capstan_status_prints()
    {
        var overview = await farm.GetJsonAsync("/api/v1/overview");
        Assert.Equal("wikifarm", overview["project"]!.GetValue<string>());
        var eqiad = overview["datacenters"]!.AsArray().Single(d => d!["name"]!.GetValue<string>() == "eqiad")!;
        Assert.True(eqiad["primary"]!.GetValue<bool>());
        Assert.Null(eqiad["readOnly"]);

        // The same releases, revisions and readiness as the CLI reports from another process.
        var (code, output, error) = await farm.RunCliAsync("status", "-o", "json");
        Assert.True(code == 0, error);
        static string Rows(JsonNode status) => string.Join("\n", status["releases"]!.AsArray()
            .Select(r => $"{r!["release"]} r{r["revision"]} {r["ready"]}/{r["desired"]} {r["mediawikiImage"]}").Order(StringComparer.Ordinal));
        var cli = JsonNode.Parse(output)!;
        Assert.Equal(Rows(cli), Rows((await farm.GetJsonAsync("/api/v1/releases"))));
        Assert.Equal(Rows(cli), Rows(overview["status"]!));
        Assert.Contains("eqiad/mw-web/main r", Rows(cli), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Held_releases_are_on_the_overview_with_who_held_them_and_why()
    {
        // A hold on an image no deploy of the other tests names, taken away again at the end.
        var holds = new Capstan.Deploy.HoldStore(farm.Store, farm.Model.Project);
        var release = new Capstan.Core.Planning.ReleaseId("codfw", "mw-api-ext", "main");
        await holds.PutAsync(new Capstan.Deploy.ReleaseHold(release, "sha256:held-in-this-test", "registry.example/mediawiki:held-in-this-test", "alice", DateTimeOffset.UtcNow, "T123 <broke> search", "plan-1"), default);
        try
        {
            var overview = await farm.GetJsonAsync("/api/v1/overview");
            var page = await (await farm.Client().GetAsync("/")).Content.ReadAsStringAsync();

            var hold = Assert.Single(overview["holds"]!.AsArray());
            Assert.Equal("codfw/mw-api-ext/main", hold!["release"]!.GetValue<string>());
            Assert.Equal("T123 <broke> search", hold["reason"]!.GetValue<string>());
            Assert.Contains("<h2>Held releases</h2>", page, StringComparison.Ordinal);
            Assert.Contains("<td>codfw/mw-api-ext/main</td><td>registry.example/mediawiki:held-in-this-test</td><td>alice</td>", page, StringComparison.Ordinal);
            Assert.Contains("T123 &lt;broke&gt; search", page, StringComparison.Ordinal);
        }
        finally
        {
            await holds.ReleaseAsync(release, default);
        }

        Assert.Empty((await farm.GetJsonAsync("/api/v1/overview"))["holds"]!.AsArray());
    }

    [Fact]
    public async Task The_train_page_says_where_the_train_is_its_blocker_and_what_the_pods_serve()
    {
        var train = await farm.GetJsonAsync("/api/v1/train");
        Assert.Equal("START", train["position"]!.GetValue<string>());
        Assert.Equal(["testwikis", "group0", "group1", "group2"], train["groups"]!.AsArray().Select(g => g!["name"]!.GetValue<string>()));
        Assert.All(train["groups"]!.AsArray(), g => Assert.Equal(["php-1.44"], g!["versions"]!.AsObject().Select(v => v.Key)));
        Assert.Equal(["php-1.44", "php-1.45"], train["imageVersions"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Null(train["blocker"]);
        Assert.True(train["live"]!["images"]!.AsArray().Sum(i => i!["pods"]!.GetValue<int>()) > 0);

        // The same as the CLI says, from another process; and a blocker recorded there shows here.
        var (code, output, error) = await farm.RunCliAsync("train", "status", "-o", "json");
        Assert.True(code == 0, error);
        Assert.Equal(train.ToJsonString(), JsonNode.Parse(output)!.ToJsonString());
        (code, _, error) = await farm.RunCliAsync("train", "block", "--reason", "https://tasks.example/T<1>", "--actor", "carol");
        Assert.True(code == 0, error);
        try
        {
            var page = await (await farm.Client().GetAsync("/train")).Content.ReadAsStringAsync();
            Assert.Contains("The train is at <strong>START</strong>. Versions in the image: php-1.44, php-1.45.", page, StringComparison.Ordinal);
            Assert.Matches("<p id=\"train-blocker\" class=\"bad\">Blocked by carol, <time [^>]+>[^<]+</time>: https://tasks.example/T&lt;1&gt;</p>", page);
            Assert.Contains("<tr><td>group0</td><td>3</td><td>php-1.44</td></tr>", page, StringComparison.Ordinal);
            Assert.Matches("Blocked by carol, <time datetime=\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\" title=\"[0-9: -]+ UTC\">[0-9: -]+ UTC</time>:", page);
        }
        finally
        {
            (code, _, error) = await farm.RunCliAsync("train", "unblock", "--reason", "done");
            Assert.True(code == 0, error);
        }
    }

    [Fact]
    public async Task Changes_need_a_token_and_get_the_clis_rules_and_messages()
    {
        using var anonymous = farm.Client();
        using var refused = await anonymous.PostAsJsonAsync("/api/v1/environments", new { name = "refused", owner = "alice", purpose = "ci", expires = "12h", group = new[] { "mw-web" } });
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("changes need a token", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var wrong = farm.Client("not-a-token-of-anyone-here");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.PostAsJsonAsync("/api/v1/environments", new { name = "refused" })).StatusCode);

        using var alice = farm.Client(DashboardFarm.AliceToken);
        using var noOwner = await alice.PostAsJsonAsync("/api/v1/environments", new { name = "refused", purpose = "ci", expires = "12h" });
        Assert.Equal(HttpStatusCode.BadRequest, noOwner.StatusCode);
        Assert.Equal("an environment needs an owner (--owner): who answers for it", (await noOwner.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>());
        using var tooLong = await alice.PostAsJsonAsync("/api/v1/environments", new { name = "refused", owner = "alice", purpose = "ci", expires = "3d", group = new[] { "mw-web" } });
        Assert.StartsWith("a ci environment lives at most 1 day;", (await tooLong.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "refused");

        using var created = await alice.PostAsJsonAsync("/api/v1/environments", new { name = "refused", owner = "alice", purpose = "ci", expires = "12h", group = new[] { "mw-web" } });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var record = await farm.GetJsonAsync("/api/v1/environments/refused");
        Assert.Equal("alice", record["createdBy"]!.GetValue<string>());
        // mw-web's main release and its statsd exporter, and its own four backends, one replica each (the canary is off
        // in environments). Ready comes from the Deployments' status, which may be a controller pass behind the rollouts
        // the create waited for.
        Assert.Equal(6, record["health"]!["desired"]!.GetValue<int>());
        Assert.InRange(record["health"]!["ready"]!.GetValue<int>(), 1, 6);

        // Someone else's environment: refused as the CLI refuses it, then allowed with force and recorded.
        using var bob = farm.Client(DashboardFarm.BobToken);
        using var notBobs = await bob.DeleteAsync("/api/v1/environments/refused");
        Assert.Equal(HttpStatusCode.BadRequest, notBobs.StatusCode);
        Assert.Equal("environment 'refused' belongs to alice; to delete it as bob, add --force (recorded)", (await notBobs.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>());
        using var extended = await bob.PostAsJsonAsync("/api/v1/environments/refused/extend", new { by = "6h", force = true });
        Assert.True(extended.IsSuccessStatusCode, await extended.Content.ReadAsStringAsync());
        var history = (await farm.GetJsonAsync("/api/v1/environments/refused"))["history"]!.AsArray();
        Assert.Contains(history, h => h!["actor"]!.GetValue<string>() == "bob" && h["forced"]!.GetValue<bool>() && h["what"]!.GetValue<string>().StartsWith("extend", StringComparison.Ordinal));
        using var deleted = await alice.DeleteAsync("/api/v1/environments/refused");
        Assert.True(deleted.IsSuccessStatusCode, await deleted.Content.ReadAsStringAsync());
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "refused");
    }

    [Fact]
    public async Task A_form_post_needs_a_session_and_its_own_csrf_token()
    {
        using var browser = farm.Client();
        var fields = new Dictionary<string, string> { ["name"] = "csrf-test", ["owner"] = "alice", ["purpose"] = "ci", ["expires"] = "12h", ["group"] = "mw-web" };
        using var anonymous = await browser.PostAsync("/environments/new", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("refused: sign in with a token to make changes; nothing was changed", await anonymous.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var badLogin = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "guess" }));
        Assert.Equal(HttpStatusCode.Unauthorized, badLogin.StatusCode);
        using var login = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = DashboardFarm.AliceToken, ["returnTo"] = "https://elsewhere.example/" }));
        Assert.Equal(HttpStatusCode.SeeOther, login.StatusCode);
        Assert.Equal("/", login.Headers.Location!.ToString());
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);

        // Signed in, but the form lacks the session's token (as a forged cross-site form would): refused.
        using var forged = await browser.PostAsync("/environments/new", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        using var wrongToken = await browser.PostAsync("/environments/new", new FormUrlEncodedContent(new Dictionary<string, string>(fields) { ["csrf"] = "not-the-token" }));
        Assert.Equal(HttpStatusCode.Forbidden, wrongToken.StatusCode);
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "csrf-test");

        // The page's own form carries it.
        var page = await browser.GetStringAsync("/environments");
        var csrf = CsrfField().Match(page).Groups[1].Value;
        Assert.NotEmpty(csrf);
        using var otherOrigin = new HttpRequestMessage(HttpMethod.Post, "/environments/new") { Content = new FormUrlEncodedContent(new Dictionary<string, string>(fields) { ["csrf"] = csrf, ["expires"] = "3d" }) };
        otherOrigin.Headers.Add("Origin", "https://elsewhere.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.SendAsync(otherOrigin)).StatusCode);
        using var badInput = await browser.PostAsync("/environments/new", new FormUrlEncodedContent(new Dictionary<string, string>(fields) { ["csrf"] = csrf, ["expires"] = "3d" }));
        Assert.Equal(HttpStatusCode.BadRequest, badInput.StatusCode);
        Assert.Contains("a ci environment lives at most 1 day;", WebUtility.HtmlDecode(await badInput.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.DoesNotContain((await farm.GetJsonAsync("/api/v1/environments"))["environments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "csrf-test");
    }

    [Fact]
    public async Task Every_page_has_a_content_security_policy_and_no_inline_script()
    {
        using var client = farm.Client();
        foreach (var path in new[] { "/", "/deploy", "/history", "/environments", "/switchover", "/login", "/releases/eqiad/mw-web/main", "/releases/eqiad/nope/x" })
        {
            using var response = await client.GetAsync(path);
            var csp = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
            Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
            var html = await response.Content.ReadAsStringAsync();
            Assert.DoesNotMatch(InlineScript(), html);
            Assert.DoesNotMatch(EventHandlerAttribute(), html);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_diff_between_revisions_masks_secret_values()
    {
        var secrets = Path.Combine(farm.Root, "private", "secrets.yaml");
        var original = File.ReadAllText(secrets);
        try
        {
            farm.Write("private/secrets.yaml", original.Replace("example-not-a-real-password", "rotated-password-4711", StringComparison.Ordinal));
            var result = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "pinkunicorn"), "rotate a password");
            var revision = result.Releases.Single(r => r.Id.Release == "pinkunicorn").Revision!.Value;
            var diff = await farm.GetJsonAsync($"/api/v1/releases/eqiad/mw-debug/pinkunicorn/diff?from={revision - 1}&to={revision}");
            var text = diff["diff"]!.GetValue<string>();
            Assert.Contains("Secret/", text, StringComparison.Ordinal);
            Assert.DoesNotContain("rotated-password-4711", text, StringComparison.Ordinal);
            Assert.DoesNotContain("example-not-a-real-password", text, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToBase64String("rotated-password-4711"u8), text, StringComparison.Ordinal);
            using var client = farm.Client();
            Assert.DoesNotContain("rotated-password-4711", await client.GetStringAsync($"/releases/eqiad/mw-debug/pinkunicorn/diff?from={revision - 1}&to={revision}"), StringComparison.Ordinal);
            // Keyed fingerprints: a change shows, but not as the plain hash anyone could compute from a guess.
            Assert.Contains("<masked hmac:", text, StringComparison.Ordinal);
            var guess = "\"" + Convert.ToBase64String("rotated-password-4711"u8) + "\"";
            var unkeyed = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(guess)))[..12];
            Assert.DoesNotContain(unkeyed, text, StringComparison.Ordinal);

            // The key is the repo's, kept 0600 under .capstan, so the CLI's diff shows the same fingerprint.
            var keyFile = Path.Combine(farm.Root, ".capstan", Capstan.Core.Security.MaskKey.FileName);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            var live = await farm.Clusters["eqiad"].GetAsync(new Capstan.Kubernetes.ObjectRef("v1", "Secret", "mw-debug", "mediawiki-pinkunicorn-private-settings"), default);
            var value = live!["data"]!["PrivateSettings.php"]!.ToJsonString();
            Assert.Contains("+  PrivateSettings.php: " + Capstan.Core.Kubernetes.SecretMasker.Fingerprint(value, Capstan.Core.Security.MaskKey.ForRepo(farm.Root)), text, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/v1/releases/eqiad/mw-debug/pinkunicorn/diff?from=1&to=999")).StatusCode);
        }
        finally
        {
            farm.Write("private/secrets.yaml", original);
        }
    }

    [Fact]
    public async Task Hostile_input_is_shown_as_text_and_hostile_requests_are_refused()
    {
        using var alice = farm.Client(DashboardFarm.AliceToken);
        using var created = await alice.PostAsJsonAsync("/api/v1/environments", new
        {
            name = "hostile", owner = "alice", purpose = "ci", expires = "12h", group = new[] { "mw-web" },
            description = "<script>alert(1)</script><img src=x onerror=alert(2)>", link = "javascript:alert(3)",
        });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        try
        {
            using var client = farm.Client();
            var page = await client.GetStringAsync("/environments/hostile");
            Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;", page, StringComparison.Ordinal);
            Assert.DoesNotContain("<script>alert", page, StringComparison.Ordinal);
            Assert.DoesNotContain("href=\"javascript:", page, StringComparison.Ordinal);
            Assert.Contains("<a href=\"#\" rel=\"noreferrer\">javascript:alert(3)</a>", page, StringComparison.Ordinal);
        }
        finally
        {
            using var deleted = await alice.DeleteAsync("/api/v1/environments/hostile");
            Assert.True(deleted.IsSuccessStatusCode, await deleted.Content.ReadAsStringAsync());
        }

        // A body that is JSON but not an object, and a post that is not a form: clear refusals, not failures.
        using var array = await alice.PostAsync("/api/v1/environments", new StringContent("[]", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, array.StatusCode);
        Assert.Equal("the request body must be a JSON object", (await array.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>());
        using var anonymous = farm.Client();
        using var notAForm = await anonymous.PostAsync("/environments/new", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.Unauthorized, notAForm.StatusCode);

        // After a sign-in only a path of the dashboard is a place to go back to; another site's page cannot sign anyone in.
        foreach (var target in new[] { "/%09/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/" })
        {
            using var login = await anonymous.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = DashboardFarm.AliceToken, ["returnTo"] = target }));
            Assert.Equal("/", login.Headers.Location!.ToString());
        }

        using var fromElsewhere = new HttpRequestMessage(HttpMethod.Post, "/login") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = DashboardFarm.AliceToken }) };
        fromElsewhere.Headers.Add("Origin", "https://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.SendAsync(fromElsewhere)).StatusCode);

        // A name rebound to 127.0.0.1 by another site's DNS is not answered.
        using var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/v1/overview");
        rebound.Headers.Host = "evil.example";
        Assert.Equal((HttpStatusCode)421, (await anonymous.SendAsync(rebound)).StatusCode);
    }

    [Fact]
    public async Task A_release_kubectl_scaled_is_drifted_in_the_api_the_overview_and_metrics()
    {
        var release = await farm.GetJsonAsync("/api/v1/releases");
        static JsonNode Row(JsonNode status) => status["releases"]!.AsArray().Single(r => r!["release"]!.GetValue<string>() == "codfw/mw-api-ext/main")!;
        Assert.Equal("Synced", Row(release)["sync"]!.GetValue<string>());
        Assert.Equal("Healthy", Row(release)["health"]!.GetValue<string>());
        var deployment = (await farm.Clusters["codfw"].ListAsync("apps/v1", "Deployment", "mw-api-ext", "app.kubernetes.io/instance=main", default)).Items.Single()["metadata"]!["name"]!.GetValue<string>();
        var kubeconfig = Path.Combine(farm.Root, ".kube-codfw", "config");
        Directory.CreateDirectory(Path.GetDirectoryName(kubeconfig)!);
        File.WriteAllText(kubeconfig, Testing.Cluster.KubeconfigFor(farm.Clusters.LocalServer("codfw")!));
        var scaled = await Testing.Kubectl.RunAsync(kubeconfig, "-n", "mw-api-ext", "scale", "deployment/" + deployment, "--replicas=1");
        Assert.True(scaled.Code == 0, scaled.Err);
        try
        {
            var drifted = Row(await farm.GetJsonAsync("/api/v1/releases"));
            Assert.Equal("Drifted", drifted["sync"]!.GetValue<string>());
            Assert.Equal($"Deployment {deployment} .spec.replicas changed by kubectl", drifted["syncDetail"]!.GetValue<string>());
            using var client = farm.Client();
            var metrics = await client.GetStringAsync("/metrics");
            Assert.Contains("capstan_release_sync{datacenter=\"codfw\",namespace=\"mw-api-ext\",release=\"main\",state=\"Drifted\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("capstan_release_sync{datacenter=\"codfw\",namespace=\"mw-api-ext\",release=\"main\",state=\"Synced\"} 0", metrics, StringComparison.Ordinal);
            Assert.Contains("capstan_release_sync{datacenter=\"eqiad\",namespace=\"mw-api-ext\",release=\"main\",state=\"Synced\"} 1", metrics, StringComparison.Ordinal);
            var page = await client.GetStringAsync("/");
            Assert.Contains($"<span class=\"badge sync sync-drifted\" title=\"Deployment {deployment} .spec.replicas changed by kubectl\">Drifted</span>", page, StringComparison.Ordinal);
        }
        finally
        {
            await farm.DeployAsync(new RenderSelection("codfw", "mw-api-ext", "main"), "back to the repo", forceConflicts: true);
        }

        Assert.Equal("Synced", Row(await farm.GetJsonAsync("/api/v1/releases"))["sync"]!.GetValue<string>());
    }

    [Fact]
    public async Task Metrics_carry_readiness_the_state_the_lock_and_environments()
    {
        using var client = farm.Client();
        var text = await client.GetStringAsync("/metrics");
        Assert.Matches(@"capstan_release_ready_replicas\{datacenter=""eqiad"",namespace=""mw-web"",release=""main""\} [1-9]\d*", text);
        Assert.Matches(@"capstan_release_desired_replicas\{datacenter=""eqiad"",namespace=""mw-web"",release=""main""\} [1-9]\d*", text);
        Assert.Contains("capstan_primary_datacenter{datacenter=\"eqiad\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("capstan_primary_datacenter{datacenter=\"codfw\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("capstan_deploy_lock_held{manual=\"false\"} 0", text, StringComparison.Ordinal);
        Assert.Matches(@"capstan_recent_deploys\{result=""succeeded""\} [1-9]", text);
        Assert.Contains("capstan_environments{purpose=\"ci\"}", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE capstan_maintenance_enabled gauge", text, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"<script(?![^>]*\bsrc=)[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex InlineScript();

    [GeneratedRegex(@"<[^>]+\son[a-z]+\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex EventHandlerAttribute();

    [GeneratedRegex("name=\"csrf\" value=\"([^\"]+)\"")]
    private static partial Regex CsrfField();
}
