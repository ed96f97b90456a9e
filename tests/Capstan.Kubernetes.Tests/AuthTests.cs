using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Capstan.LocalCluster;
using Capstan.LocalCluster.Auth;

namespace Capstan.Kubernetes.Tests;

/// <summary>Kubeconfig authentication against the embedded cluster's token authentication and RBAC.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AuthTests : IAsyncLifetime
{
    private static readonly ObjectRef Namespaces = new("v1", "Namespace", null, "default");
    private readonly string _dir = Directory.CreateTempSubdirectory("capstan-auth-").FullName;
    private Cluster _cluster = null!;

    public async Task InitializeAsync()
    {
        // alice may read namespaces; bob may do nothing.
        _cluster = await Cluster.StartAsync(new LocalClusterOptions
        {
            Users = [("tok-alice", new UserInfo("alice", "1", ["readers"])), ("tok-bob", new UserInfo("bob", "2", [])), ("tok-carol", new UserInfo("carol", "3", []))],
        });
        await _cluster.ApplyAsync("""
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "namespace-reader"},
             "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}]}
            """);
        await _cluster.ApplyAsync("""
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "readers"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "namespace-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "readers"}]}
            """);
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private ClusterConnection Connect(string user, string? cluster = null)
    {
        var server = _cluster.Server;
        var path = Path.Combine(_dir, "config");
        File.WriteAllText(path, $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: local
              cluster:
                server: "{{server.Url.ToString().TrimEnd('/')}}"
                certificate-authority-data: "{{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(server.CertificateAuthorityPem!))}}"
            {{cluster}}
            users:
            - name: someone
              user:
            {{user}}
            contexts:
            - name: local
              context: {cluster: local, user: someone}
            current-context: local
            """);
        return KubeConfig.LoadFiles([path]).Resolve();
    }

    private string Plugin(string body)
    {
        var path = Path.Combine(_dir, "plugin.sh");
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Fact]
    public async Task An_exec_plugin_token_is_used_until_it_expires_and_the_plugin_runs_again_after()
    {
        var plugin = Plugin($$$"""
            echo run >> "{{{_dir}}}/runs"
            for a in "$@"; do echo "$a"; done > "{{{_dir}}}/args"
            printf '%s' "$KUBERNETES_EXEC_INFO" > "{{{_dir}}}/exec-info"
            echo '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": "tok-alice", "expirationTimestamp": "2030-01-01T00:00:00Z"}}'
            """);
        var connection = Connect($$"""
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: {{plugin}}
                  args: ["--cluster", "a b; echo not-a-shell"]
                  interactiveMode: Never
            """);
        var clock = new ManualClock(DateTimeOffset.Parse("2029-12-31T23:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var client = new KubeClient(connection, new KubeClientOptions { Time = clock });

        Assert.NotNull(await client.GetAsync(Namespaces, default));
        Assert.NotNull(await client.GetAsync(Namespaces, default));
        Assert.Equal(1, client.CredentialPluginRuns);
        Assert.Equal(["--cluster", "a b; echo not-a-shell"], File.ReadAllLines(Path.Combine(_dir, "args")));
        Assert.Contains("\"kind\":\"ExecCredential\"", File.ReadAllText(Path.Combine(_dir, "exec-info")), StringComparison.Ordinal);
        Assert.Contains("\"interactive\":false", File.ReadAllText(Path.Combine(_dir, "exec-info")), StringComparison.Ordinal);

        // Past the token's expiry the plugin is asked again.
        clock.Advance(TimeSpan.FromHours(2));
        Assert.NotNull(await client.GetAsync(Namespaces, default));
        Assert.Equal(2, client.CredentialPluginRuns);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(_dir, "runs")).Length);
    }

    [Fact]
    public async Task A_failing_exec_plugin_is_an_error_with_its_stderr()
    {
        var plugin = Plugin("echo \"session expired: run 'wiki-login' first\" >&2\nexit 3\n");
        var connection = Connect($$"""
                exec: {apiVersion: client.authentication.k8s.io/v1, command: {{plugin}}}
            """);
        await using var client = new KubeClient(connection);
        var error = await Assert.ThrowsAsync<KubeCredentialException>(() => client.GetAsync(Namespaces, default));
        Assert.Equal($"the credential plugin '{plugin}' failed (exit code 3): session expired: run 'wiki-login' first", error.Message);
    }

    [Fact]
    public async Task A_missing_exec_plugin_says_how_to_install_it()
    {
        var connection = Connect("""
                exec: {apiVersion: client.authentication.k8s.io/v1, command: /nonexistent/wiki-login, installHint: "install wiki-login from the team's repository"}
            """);
        await using var client = new KubeClient(connection);
        var error = await Assert.ThrowsAsync<KubeCredentialException>(() => client.GetAsync(Namespaces, default));
        Assert.StartsWith("the credential plugin '/nonexistent/wiki-login' could not be run: ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("\ninstall wiki-login from the team's repository", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_file_is_read_again_when_it_changes()
    {
        var file = Path.Combine(_dir, "token");
        File.WriteAllText(file, "tok-alice\n");
        await using var client = new KubeClient(Connect($"    tokenFile: {file}"));
        Assert.NotNull(await client.GetAsync(Namespaces, default));

        // Rotated: the next request is bob's, whom RBAC refuses, by name.
        File.WriteAllText(file, "tok-bob\n");
        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(5));
        var refused = await Assert.ThrowsAsync<KubeForbiddenException>(() => client.GetAsync(Namespaces, default));
        Assert.Equal("namespaces \"default\" is forbidden: User \"bob\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"default\"", refused.Message);
    }

    [Fact]
    public async Task Impersonation_headers_act_as_the_named_user_when_the_caller_may_impersonate()
    {
        // The admin may impersonate: as bob it is refused what bob is refused, as alice of readers it reads.
        await using (var asBob = new KubeClient(Connect($"    token: {_cluster.Server.AdminToken}\n    as: bob")))
        {
            var refused = await Assert.ThrowsAsync<KubeForbiddenException>(() => asBob.GetAsync(Namespaces, default));
            Assert.Contains("User \"bob\" cannot get resource \"namespaces\"", refused.Message, StringComparison.Ordinal);
            Assert.Equal("bob", asBob.User);
        }

        await using (var asAlice = new KubeClient(Connect($"    token: {_cluster.Server.AdminToken}\n    as: alice\n    as-groups: [readers]\n    as-uid: \"1\"")))
        {
            Assert.NotNull(await asAlice.GetAsync(Namespaces, default));
        }

        // bob may not impersonate anyone.
        await using var bob = new KubeClient(Connect("    token: tok-bob\n    as: alice"));
        var forbidden = await Assert.ThrowsAsync<KubeForbiddenException>(() => bob.GetAsync(Namespaces, default));
        Assert.Equal("users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope", forbidden.Message);
    }

    [Fact]
    public async Task An_impersonated_extra_is_allowed_per_key_and_value()
    {
        // carol may act as alice with scopes=view, and nothing more.
        await _cluster.ApplyAsync("""
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "act-as-alice"},
             "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]},
                       {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["readers"]},
                       {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"], "verbs": ["impersonate"], "resourceNames": ["view"]}]}
            """);
        await _cluster.ApplyAsync("""
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "carol-acts-as-alice"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "act-as-alice"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}
            """);
        await using (var view = new KubeClient(Connect("    token: tok-carol\n    as: alice\n    as-groups: [readers]\n    as-user-extra: {scopes: [view]}")))
        {
            Assert.NotNull(await view.GetAsync(Namespaces, default));
        }

        await using var admin = new KubeClient(Connect("    token: tok-carol\n    as: alice\n    as-groups: [readers]\n    as-user-extra: {scopes: [admin]}"));
        var refused = await Assert.ThrowsAsync<KubeForbiddenException>(() => admin.GetAsync(Namespaces, default));
        Assert.Equal("userextras.authentication.k8s.io \"admin\" is forbidden: User \"carol\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope", refused.Message);
    }

    [Fact]
    public void A_context_naming_a_missing_user_lists_the_users()
    {
        var path = Path.Combine(_dir, "broken");
        File.WriteAllText(path, """
            clusters: [{name: c, cluster: {server: "https://c.example"}}]
            users: [{name: deployer, user: {token: t}}, {name: admin, user: {token: u}}]
            contexts: [{name: x, context: {cluster: c, user: deploer}}]
            """);
        var error = Assert.Throws<KubeConfigException>(() => KubeConfig.LoadFiles([path]).Resolve("x"));
        Assert.Equal("context 'x' names user 'deploer', which is not in the kubeconfig (known: admin, deployer)", error.Message);
    }
}

/// <summary>TLS as kubeconfigs describe it: CA bundles with intermediates, and tls-server-name.</summary>
public sealed class TlsNameAndChainTests
{
    private static X509Certificate2 Issue(string subject, X509Certificate2? issuer, ECDsa key, bool ca, string? dns)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(ca, false, 0, true));
        if (dns is not null)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName(dns);
            request.CertificateExtensions.Add(san.Build());
        }

        var from = DateTimeOffset.UtcNow.AddDays(-1);
        var to = DateTimeOffset.UtcNow.AddDays(1);
        if (issuer is null)
        {
            return request.CreateSelfSigned(from, to);
        }

        using var signed = request.Create(issuer, from, to, RandomNumberGenerator.GetBytes(8));
        return signed.CopyWithPrivateKey(key);
    }

    [Fact]
    public async Task A_server_sending_an_intermediate_is_trusted_through_the_root_and_checked_against_tls_server_name()
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var middleKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var root = Issue("CN=root", null, rootKey, ca: true, null);
        using var middle = Issue("CN=intermediate", root, middleKey, ca: true, null);
        using var leaf = Issue("CN=api", middle, leafKey, ca: false, "api.internal.example");
        using var serving = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
        using var middlePublic = X509CertificateLoader.LoadCertificate(middle.Export(X509ContentType.Cert));
        await using var server = await LocalClusterServer.StartAsync(new LocalClusterOptions { TlsCertificate = serving, TlsCertificateChain = [middlePublic] }, default);
        var url = new Uri($"https://127.0.0.1:{server.Url.Port}");
        var ca = System.Text.Encoding.UTF8.GetBytes(root.ExportCertificatePem());
        var reference = new ObjectRef("v1", "Namespace", null, "default");

        // Only the root is in the kubeconfig; the intermediate comes from the server. The URL is an address the
        // certificate does not name: tls-server-name says which name to check.
        await using (var named = new KubeClient(new ClusterConnection(url, ca, Token: server.AdminToken, TlsServerName: "api.internal.example")))
        {
            Assert.NotNull(await named.GetAsync(reference, default));
        }

        await using var unnamed = new KubeClient(new ClusterConnection(url, ca, Token: server.AdminToken), new KubeClientOptions { MaxAttempts = 1 });
        var error = await Assert.ThrowsAsync<KubeUnavailableException>(() => unnamed.GetAsync(reference, default));
        Assert.Contains("SSL", error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
