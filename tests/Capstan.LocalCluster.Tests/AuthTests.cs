using System.Net;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.LocalCluster.Auth;

namespace Capstan.LocalCluster.Tests;

/// <summary>Bearer tokens, a static token file, and RBAC with the real rule semantics and messages.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AuthTests : IDisposable
{
    private const string DanaToken = "dana-token-0123456789-abcdefghijkl";
    private const string OpsToken = "ops-token-0123456789-abcdefghijklm";

    private readonly string _dir = Directory.CreateTempSubdirectory("capstan-auth-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<Cluster> StartWithUsersAsync()
    {
        var users = Path.Combine(_dir, "users.csv");
        await File.WriteAllTextAsync(users, $"""
            # token,user,uid,"groups"
            {DanaToken},dana,1001
            {OpsToken},olu,1002,"ops,oncall"
            """);
        File.SetUnixFileMode(users, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var cluster = await Cluster.StartAsync(new LocalClusterOptions { Users = Authenticator.ReadTokenFile(users) });
        foreach (var ns in new[] { "team", "other" })
        {
            await cluster.NamespaceAsync(ns);
        }

        await cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: deployer, namespace: team}
            rules:
              - apiGroups: ["", apps]
                resources: [configmaps, deployments]
                verbs: [get, list, watch, create, patch, update, delete]
              - apiGroups: [apps]
                resources: [deployments/scale]
                resourceNames: [web]
                verbs: [get, patch]
            """);
        await cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: deployer-dana, namespace: team}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
            """);
        return cluster;
    }

    private static async Task<string> MessageAsync(HttpResponseMessage response) =>
        System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["message"]!.GetValue<string>();

    private static KubeClient As(Cluster cluster, string token) =>
        new(cluster.Connection(token), new KubeClientOptions { MaxAttempts = 1 });

    [Fact]
    public async Task A_request_without_a_valid_token_is_refused_but_health_and_version_are_public()
    {
        await using var cluster = await Cluster.StartAsync();
        using var anonymous = cluster.Http(token: string.Empty);
        using var refused = await anonymous.GetAsync("/api/v1/namespaces/default/secrets");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("\"reason\":\"Unauthorized\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/capstan/faults", new StringContent("{}"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/version")).StatusCode);

        using var wrong = cluster.Http("not-the-token");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/v1/namespaces")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/healthz")).StatusCode);

        using var admin = cluster.Http();
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/v1/namespaces/default/secrets")).StatusCode);
    }

    [Fact]
    public async Task A_namespace_scoped_user_is_allowed_inside_its_namespace_and_denied_outside_with_the_real_message()
    {
        await using var cluster = await StartWithUsersAsync();
        await using var dana = As(cluster, DanaToken);

        var created = await dana.ApplyAsync(Cluster.Yaml("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: team}
            data: {a: "1"}
            """), force: false, dryRun: false, default);
        Assert.Equal("settings", created["metadata"]!["name"]!.GetValue<string>());
        // Hers, and the CA every namespace publishes (kube-root-ca.crt), once its controller has run.
        var names = (await dana.ListAsync("v1", "ConfigMap", "team", null, default)).Items.Select(c => c["metadata"]!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("settings", names);
        Assert.All(names, n => Assert.Contains(n, new[] { "settings", "kube-root-ca.crt" }));

        var otherNamespace = await Assert.ThrowsAsync<KubeForbiddenException>(() => dana.ListAsync("v1", "ConfigMap", "other", null, default));
        Assert.Equal("configmaps is forbidden: User \"dana\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"other\"", otherNamespace.Message);

        var secret = await Assert.ThrowsAsync<KubeForbiddenException>(() => dana.GetAsync(new ObjectRef("v1", "Secret", "team", "db"), default));
        Assert.Equal("secrets \"db\" is forbidden: User \"dana\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team\"", secret.Message);

        var clusterScope = await Assert.ThrowsAsync<KubeForbiddenException>(() => dana.ListAsync("v1", "Namespace", null, null, default));
        Assert.Equal("namespaces is forbidden: User \"dana\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope", clusterScope.Message);

        using var http = cluster.Http(DanaToken);
        using var control = await http.GetAsync("/capstan/faults");
        Assert.Equal(HttpStatusCode.Forbidden, control.StatusCode);
        Assert.Equal("forbidden: User \"dana\" cannot get path \"/capstan/faults\"", await MessageAsync(control));
    }

    [Fact]
    public async Task Subresources_and_resource_names_limit_what_a_rule_allows()
    {
        await using var cluster = await StartWithUsersAsync();
        foreach (var name in new[] { "web", "api" })
        {
            await cluster.ApplyAsync($$$"""
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: {{{name}}}, namespace: team}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app: {{{name}}}}}
                  template:
                    metadata: {labels: {app: {{{name}}}}}
                    spec: {containers: [{name: main, image: "web:1"}]}
                """);
        }

        using var http = cluster.Http(DanaToken);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/apis/apps/v1/namespaces/team/deployments/web/scale")).StatusCode);
        using var denied = await http.GetAsync("/apis/apps/v1/namespaces/team/deployments/api/scale");
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal(
            "deployments.apps \"api\" is forbidden: User \"dana\" cannot get resource \"deployments/scale\" in API group \"apps\" in the namespace \"team\"",
            await MessageAsync(denied));
        Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync("/apis/apps/v1/namespaces/team/deployments/web/status")).StatusCode);
    }

    [Fact]
    public async Task Groups_from_the_token_file_bind_through_a_cluster_role_binding_and_the_default_view_role()
    {
        await using var cluster = await StartWithUsersAsync();
        await using var olu = As(cluster, OpsToken);
        Assert.ThrowsAny<KubeForbiddenException>(() => olu.ListAsync("v1", "Pod", "other", null, default).GetAwaiter().GetResult());

        await cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: ops-view}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}]
            """);
        Assert.Empty((await olu.ListAsync("v1", "Pod", "other", null, default)).Items);
        Assert.NotEmpty((await olu.ListAsync("v1", "Namespace", null, null, default)).Items);

        // view reads no Secrets and writes nothing.
        await Assert.ThrowsAsync<KubeForbiddenException>(() => olu.ListAsync("v1", "Secret", "other", null, default));
        await Assert.ThrowsAsync<KubeForbiddenException>(() => olu.ApplyAsync(Cluster.Yaml("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: x, namespace: other}
            """), force: false, dryRun: false, default));
    }

    [Fact]
    public async Task A_binding_s_role_reference_is_validated_and_immutable()
    {
        await using var cluster = await StartWithUsersAsync();
        var changed = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: deployer-dana, namespace: team}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
            """));
        Assert.Equal("roleRef", Assert.Single(changed.Causes).Field);
        Assert.Contains("cannot change roleRef", changed.Message, StringComparison.Ordinal);

        var badKind = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: wrong}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
            subjects: [{kind: Robot, name: r2}]
            """));
        Assert.Equal(["roleRef.kind", "subjects[0].kind"], badKind.Causes.Select(c => c.Field));
    }

    [Theory]
    [InlineData("tok,user", "users.csv:1: error: expected token,user,uid")]
    [InlineData("tok,user,1,\"a,b", "users.csv:1: error: unbalanced quotes")]
    [InlineData("token-of-thirty-two-characters-0,a,1\ntoken-of-thirty-two-characters-0,b,2", "users.csv:2: error: the token of this line is already used by an earlier line")]
    [InlineData("# users\nshort-token-0123456789,a,1", "users.csv:2: error: the token has 22 characters; a token needs at least 32 (for example: openssl rand -base64 32)")]
    public void A_bad_token_file_names_the_file_and_line(string text, string message)
    {
        var path = Path.Combine(_dir, "users.csv");
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var error = Assert.Throws<UserInputException>(() => Authenticator.ReadTokenFile(path));
        Assert.StartsWith(Path.Combine(_dir, message), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_file_others_can_read_or_one_that_reuses_the_admins_token_is_refused()
    {
        var path = Path.Combine(_dir, "users.csv");
        File.WriteAllText(path, $"{DanaToken},dana,1001\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
        var readable = Assert.Throws<UserInputException>(() => Authenticator.ReadTokenFile(path));
        Assert.Equal($"the users file '{path}' can be read by others; make it private first: chmod 600 {path}", readable.Message);

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var users = Authenticator.ReadTokenFile(path);
        var reused = Assert.Throws<UserInputException>(() => new Authenticator(DanaToken, users));
        Assert.Equal("the users file gives dana the admin's token; every user needs a token of their own (at least 32 characters)", reused.Message);
    }

    [Fact]
    public async Task A_cluster_scoped_kind_has_no_namespaced_path_and_a_dry_run_writes_nothing()
    {
        await using var cluster = await StartWithUsersAsync();
        using var admin = cluster.Http();
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/namespaces/team/namespaces")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/apis/rbac.authorization.k8s.io/v1/namespaces/team/clusterrolebindings")).StatusCode);

        // A namespace-scoped user cannot reach cluster-scoped objects through their namespace's path either.
        using var dana = cluster.Http(DanaToken);
        Assert.NotEqual(HttpStatusCode.OK, (await dana.GetAsync("/api/v1/namespaces/team/namespaces")).StatusCode);

        // A dry run answers what it would store and stores nothing; an unknown dry-run value is refused, not ignored.
        StringContent Body() => new("""{"metadata": {"name": "dry"}, "data": {"a": "1"}}""", System.Text.Encoding.UTF8, "application/json");
        using var dryRun = await admin.PostAsync("/api/v1/namespaces/team/configmaps?dryRun=All", Body());
        Assert.Equal(HttpStatusCode.Created, dryRun.StatusCode);
        Assert.Equal("1", JsonNode.Parse(await dryRun.Content.ReadAsStringAsync())!["data"]!["a"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/namespaces/team/configmaps/dry")).StatusCode);
        using var unknown = await admin.PostAsync("/api/v1/namespaces/team/configmaps?dryRun=Some", Body());
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/namespaces/team/configmaps/dry")).StatusCode);
    }

    [Fact]
    public async Task A_user_who_may_write_roles_cannot_grant_more_than_they_hold()
    {
        await using var cluster = await StartWithUsersAsync();
        await cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: rbac-writer, namespace: team}
            rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, get, patch, update]}]
            """);
        await cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: rbac-writer-dana, namespace: team}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-writer}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
            """);
        using var dana = cluster.Http(DanaToken);
        static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

        using (var toAdmin = await dana.PostAsync("/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings", Json("""
            {"metadata": {"name": "dana-admin"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
             "subjects": [{"kind": "User", "name": "dana"}]}
            """)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, toAdmin.StatusCode);
            Assert.StartsWith(
                "rolebindings.rbac.authorization.k8s.io \"dana-admin\" is forbidden: user \"dana\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n",
                await MessageAsync(toAdmin), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Created, (await dana.PostAsync("/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles", Json("""
            {"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
            """))).StatusCode);
        using var secrets = await dana.PostAsync("/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles", Json("""
            {"metadata": {"name": "secret-reader"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
            """));
        Assert.Equal(HttpStatusCode.Forbidden, secrets.StatusCode);
        Assert.EndsWith("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}", await MessageAsync(secrets), StringComparison.Ordinal);

        // Patching a role she may write into one that holds more is refused the same way.
        using var widened = new HttpRequestMessage(HttpMethod.Patch, "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/reader")
        {
            Content = new StringContent("""{"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}""", System.Text.Encoding.UTF8, "application/merge-patch+json"),
        };
        Assert.Equal(HttpStatusCode.Forbidden, (await dana.SendAsync(widened)).StatusCode);
    }

    [Fact]
    public async Task Self_reviews_answer_what_the_caller_may_do_as_rbac_decides_it()
    {
        await using var cluster = await StartWithUsersAsync();
        using var http = cluster.Http(DanaToken);
        async Task<JsonNode> ReviewAsync(string kind, string spec)
        {
            using var response = await http.PostAsync($"/apis/authorization.k8s.io/v1/{kind.ToLowerInvariant()}s", new StringContent(
                $$"""{"apiVersion": "authorization.k8s.io/v1", "kind": "{{kind}}", "spec": {{spec}}}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        }

        async Task<bool> MayAsync(string verb, string resource, string ns) =>
            (await ReviewAsync("SelfSubjectAccessReview", $$$"""{"resourceAttributes": {"verb": "{{{verb}}}", "resource": "{{{resource}}}", "namespace": "{{{ns}}}"}}"""))["status"]!["allowed"]!.GetValue<bool>();

        Assert.True(await MayAsync("create", "configmaps", "team"));
        Assert.False(await MayAsync("get", "secrets", "team"));
        Assert.False(await MayAsync("list", "configmaps", "other"));
        Assert.False(await MayAsync("list", "namespaces", string.Empty));
        var discovery = await ReviewAsync("SelfSubjectAccessReview", """{"nonResourceAttributes": {"verb": "get", "path": "/apis"}}""");
        Assert.True(discovery["status"]!["allowed"]!.GetValue<bool>());

        // The same answers as the requests themselves get.
        using (var forbidden = await http.GetAsync("/api/v1/namespaces/team/secrets/db"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        var rules = (await ReviewAsync("SelfSubjectRulesReview", """{"namespace": "team"}"""))["status"]!;
        Assert.False(rules["incomplete"]!.GetValue<bool>());
        Assert.Contains(rules["resourceRules"]!.AsArray(), r => r!["resources"]!.AsArray().Any(x => x!.GetValue<string>() == "configmaps") && r["verbs"]!.AsArray().Any(v => v!.GetValue<string>() == "create"));
        Assert.Contains(rules["resourceRules"]!.AsArray(), r => r!["resources"]!.AsArray().Any(x => x!.GetValue<string>() == "selfsubjectaccessreviews"));
        Assert.DoesNotContain(rules["resourceRules"]!.AsArray(), r => r!["resources"]!.AsArray().Any(x => x!.GetValue<string>() is "secrets" or "*"));
        Assert.Contains(rules["nonResourceRules"]!.AsArray(), r => r!["nonResourceURLs"]!.AsArray().Any(u => u!.GetValue<string>() == "/apis"));
    }
}
