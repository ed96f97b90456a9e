using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Capstan.LocalCluster.Tests;

/// <summary>The real kubectl, as an outside client of the embedded API server.</summary>
public sealed class KubectlTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-kubectl-" + Guid.NewGuid().ToString("N"));
    private Cluster _cluster = null!;

    private string Kubeconfig => Path.Combine(_dir, "kubeconfig");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _cluster = await Cluster.StartAsync();
        await File.WriteAllTextAsync(Kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: local
              cluster: {"{"}server: "{_cluster.Server.Url.ToString().TrimEnd('/')}", certificate-authority-data: "{Convert.ToBase64String(Encoding.UTF8.GetBytes(_cluster.Server.CertificateAuthorityPem!))}"{"}"}
            users:
            - name: local
              user: {"{"}token: "{_cluster.Server.AdminToken}"{"}"}
            contexts:
            - name: local
              context: {"{"}cluster: local, user: local{"}"}
            current-context: local
            """);
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Code, string Out, string Err)> KubectlAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = _dir;
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Kubectl_gets_applies_reads_as_json_and_deletes()
    {
        var namespaces = await KubectlAsync("get", "namespaces");
        Assert.Equal(0, namespaces.Code);
        Assert.Contains("kube-system", namespaces.Out, StringComparison.Ordinal);

        var manifest = Path.Combine(_dir, "release.yaml");
        await File.WriteAllTextAsync(manifest, """
            apiVersion: v1
            kind: Namespace
            metadata: {name: mw-web}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: statsd-exporter-prometheus-config, namespace: mw-web}
            data: {prometheus-statsd.conf: "mappings: []"}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: statsd-exporter-prometheus, namespace: mw-web, labels: {app: statsd-exporter}}
            spec:
              replicas: 1
              selector: {matchLabels: {app: statsd-exporter}}
              template:
                metadata: {labels: {app: statsd-exporter}}
                spec: {containers: [{name: statsd-exporter, image: prom/statsd-exporter}]}
            """);
        var apply = await KubectlAsync("apply", "--server-side", "--validate=false", "-f", manifest);
        Assert.True(apply.Code == 0, apply.Err);
        Assert.Contains("deployment.apps/statsd-exporter-prometheus serverside-applied", apply.Out, StringComparison.Ordinal);
        Assert.Contains("namespace/mw-web serverside-applied", apply.Out, StringComparison.Ordinal);

        var json = await KubectlAsync("get", "deployments", "-n", "mw-web", "-o", "json", "--show-managed-fields");
        Assert.Equal(0, json.Code);
        using (var doc = JsonDocument.Parse(json.Out))
        {
            var item = Assert.Single(doc.RootElement.GetProperty("items").EnumerateArray());
            Assert.Equal("statsd-exporter-prometheus", item.GetProperty("metadata").GetProperty("name").GetString());
            Assert.Equal("kubectl", item.GetProperty("metadata").GetProperty("managedFields")[0].GetProperty("manager").GetString());
        }

        var delete = await KubectlAsync("delete", "configmap", "statsd-exporter-prometheus-config", "-n", "mw-web");
        Assert.Equal(0, delete.Code);
        Assert.Contains("configmap \"statsd-exporter-prometheus-config\" deleted", delete.Out, StringComparison.Ordinal);
        var gone = await KubectlAsync("get", "configmap", "statsd-exporter-prometheus-config", "-n", "mw-web");
        Assert.NotEqual(0, gone.Code);
        Assert.Contains("NotFound", gone.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kubectl_watches_pods_for_a_bounded_time()
    {
        await _cluster.NamespaceAsync("mw-web");
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = _dir;
        foreach (var arg in new[] { "get", "pods", "-n", "mw-web", "--watch", "--request-timeout=20s" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await Task.Delay(1500);
        await _cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: mw-web}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: main, image: x}]}
            """);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            lock (output)
            {
                if (output.ToString().Split('\n').Count(l => l.StartsWith("web-", StringComparison.Ordinal)) >= 2)
                {
                    break;
                }
            }

            await Task.Delay(100);
        }

        process.Kill();
        await process.WaitForExitAsync();
        string text;
        lock (output)
        {
            text = output.ToString();
        }

        Assert.True(text.Split('\n').Count(l => l.StartsWith("web-", StringComparison.Ordinal)) >= 2, text);
    }

    [Fact]
    public async Task Kubectl_set_env_and_patch_merge_containers_by_name()
    {
        await _cluster.NamespaceAsync("app");
        await _cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 1
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers:
                    - {name: main, image: "web:1", env: [{name: MODE, value: production}]}
                    - {name: sidecar, image: "proxy:1"}
            """);
        var setEnv = await KubectlAsync("set", "env", "deployment/web", "-n", "app", "-c", "main", "TRACING=on");
        Assert.True(setEnv.Code == 0, setEnv.Err);
        var patch = await KubectlAsync("patch", "deployment/web", "-n", "app", "-p", """{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"proxy:2"}]}}}}""");
        Assert.True(patch.Code == 0, patch.Err);

        var json = await KubectlAsync("get", "deployment/web", "-n", "app", "-o", "json");
        using var doc = JsonDocument.Parse(json.Out);
        var containers = doc.RootElement.GetProperty("spec").GetProperty("template").GetProperty("spec").GetProperty("containers");
        Assert.Equal(2, containers.GetArrayLength());
        Assert.Equal(["MODE", "TRACING"], containers[0].GetProperty("env").EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        Assert.Equal("web:1", containers[0].GetProperty("image").GetString());
        Assert.Equal("proxy:2", containers[1].GetProperty("image").GetString());

        var scale = await KubectlAsync("scale", "deployment/web", "-n", "app", "--replicas=3");
        Assert.True(scale.Code == 0, scale.Err);
        using var scaled = JsonDocument.Parse((await KubectlAsync("get", "deployment/web", "-n", "app", "-o", "json")).Out);
        Assert.Equal(3, scaled.RootElement.GetProperty("spec").GetProperty("replicas").GetInt32());
    }
}
