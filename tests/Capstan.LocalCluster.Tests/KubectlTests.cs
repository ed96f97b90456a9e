using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
        await File.WriteAllTextAsync(Kubeconfig, _cluster.Kubeconfig());
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<(int Code, string Out, string Err)> KubectlAsync(params string[] args) => KubectlAsync(new Dictionary<string, string>(), args);

    private async Task<(int Code, string Out, string Err)> KubectlAsync(Dictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = _dir;
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }

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
        var apply = await KubectlAsync("apply", "--server-side", "-f", manifest);
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

    /// <summary>A long-running kubectl (a watch), its output collected as it comes.</summary>
    private sealed class Watcher : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _out = new();
        private readonly StringBuilder _err = new();

        public Watcher(string kubeconfig, string home, params string[] args)
        {
            var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.Environment["KUBECONFIG"] = kubeconfig;
            psi.Environment["HOME"] = home;
            foreach (var arg in args)
            {
                psi.ArgumentList.Add(arg);
            }

            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => Append(_out, e.Data);
            _process.ErrorDataReceived += (_, e) => Append(_err, e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Out => Read(_out);

        public string Err => Read(_err);

        /// <summary>Waits until the output (stdout and stderr) satisfies the condition, failing after a bound.</summary>
        public Task WaitForAsync(Func<string, bool> condition, string what) =>
            Cluster.EventuallyAsync(() => Task.FromResult(condition(Out + Err) ? what : null), what);

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit();
            }

            _process.Dispose();
        }

        private static void Append(StringBuilder sb, string? line)
        {
            lock (sb)
            {
                sb.AppendLine(line);
            }
        }

        private static string Read(StringBuilder sb)
        {
            lock (sb)
            {
                return sb.ToString();
            }
        }
    }

    private const string WebDeployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: mw-web}
        spec:
          replicas: 2
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: main, image: "web:1"}]}
        """;

    [Fact]
    public async Task Kubectl_watches_pods_as_table_rows()
    {
        await _cluster.NamespaceAsync("mw-web");
        await _cluster.ApplyAsync(WebDeployment);
        await _cluster.RolledOutAsync("mw-web", "web", "web rolled out");
        static int Pods(string output) => output.Split('\n')
            .Where(l => l.StartsWith("web-", StringComparison.Ordinal) && l.Contains("Running", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[0]).Distinct(StringComparer.Ordinal).Count();

        using var watch = new Watcher(Kubeconfig, _dir, "get", "pods", "-n", "mw-web", "--watch", "--request-timeout=30s");

        // The two rows of the initial list are printed before the watch begins; a third pod can only come from it.
        await watch.WaitForAsync(o => Pods(o) == 2, "the two pods of the list");
        await _cluster.Client.PatchAsync(new ObjectRef("apps/v1", "Deployment", "mw-web", "web"), new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 3 } }, "test", default);
        await watch.WaitForAsync(o => Pods(o) == 3, "a third pod from the watch");
        Assert.Matches(@"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n", watch.Out);
        Assert.Matches(@"web-[a-z0-9]+-[a-z0-9]{5}\s+1/1\s+Running\s+0\s+\d+s", watch.Out);
    }

    [Fact]
    public async Task Kubectl_get_prints_the_columns_the_real_server_gives_and_get_all_and_events_work()
    {
        await _cluster.NamespaceAsync("mw-web");
        await _cluster.ApplyAsync(WebDeployment);
        await _cluster.RolledOutAsync("mw-web", "web", "web rolled out");

        var deployments = await KubectlAsync("get", "deployments", "-n", "mw-web");
        Assert.True(deployments.Code == 0, deployments.Err);
        Assert.Matches(@"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\n", deployments.Out);
        Assert.Matches(@"\nweb\s+2/2\s+2\s+2\s+\d+s\n", deployments.Out);

        var wide = await KubectlAsync("get", "replicasets", "-n", "mw-web", "-o", "wide");
        Assert.Matches(@"^NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR\n", wide.Out);
        Assert.Matches(@"web-[a-z0-9]+\s+2\s+2\s+2\s+\d+s\s+main\s+web:1\s+app=web,pod-template-hash=", wide.Out);

        var all = await KubectlAsync("get", "all", "-n", "mw-web");
        Assert.True(all.Code == 0, all.Err);
        Assert.Contains("deployment.apps/web", all.Out, StringComparison.Ordinal);
        Assert.Contains("replicaset.apps/web-", all.Out, StringComparison.Ordinal);
        Assert.Contains("pod/web-", all.Out, StringComparison.Ordinal);

        var events = await KubectlAsync("get", "events", "-n", "mw-web");
        Assert.Matches(@"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n", events.Out);
        Assert.Matches(@"Normal\s+ScalingReplicaSet\s+deployment/web\s+Scaled up replica set web-[a-z0-9]+ from 0 to 2", events.Out);

        var namespaces = await KubectlAsync("get", "namespaces");
        Assert.Matches(@"\nmw-web\s+Active\s+\d+s\n", namespaces.Out);
    }

    [Fact]
    public async Task Kubectl_apply_validates_on_the_server_and_explain_reads_the_schema()
    {
        var manifest = Path.Combine(_dir, "typo.yaml");
        await File.WriteAllTextAsync(manifest, """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: default}
            dta: {mode: production}
            """);
        var typo = await KubectlAsync("apply", "-f", manifest);
        Assert.NotEqual(0, typo.Code);
        Assert.Contains("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\"", typo.Err, StringComparison.Ordinal);
        var serverSide = await KubectlAsync("apply", "--server-side", "-f", manifest);
        Assert.Contains("failed to create typed patch object (/v1, Kind=ConfigMap): .dta: field not declared in schema", serverSide.Err, StringComparison.Ordinal);
        Assert.Contains("NotFound", (await KubectlAsync("get", "configmap", "settings")).Err, StringComparison.Ordinal);

        // Warn drops the field and says so; the object is created without it.
        var warned = await KubectlAsync("apply", "--validate=warn", "-f", manifest);
        Assert.True(warned.Code == 0, warned.Err);
        Assert.Contains("Warning: unknown field \"dta\"", warned.Err, StringComparison.Ordinal);

        await File.WriteAllTextAsync(manifest, """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: default}
            data: {mode: production}
            """);
        var apply = await KubectlAsync("apply", "-f", manifest);
        Assert.True(apply.Code == 0, apply.Err);
        Assert.Contains("configmap/settings configured", apply.Out, StringComparison.Ordinal);

        var explain = await KubectlAsync("explain", "deployment.spec.strategy.rollingUpdate.maxSurge");
        Assert.True(explain.Code == 0, explain.Err);
        Assert.Contains("GROUP:      apps", explain.Out, StringComparison.Ordinal);
        Assert.Contains("FIELD: maxSurge <", explain.Out, StringComparison.Ordinal);
        Assert.Contains("The maximum number of pods that can be scheduled above the desired number", explain.Out, StringComparison.Ordinal);
        var explainPod = await KubectlAsync("explain", "pods.spec.containers.env");
        Assert.Contains("FIELD: env <[]EnvVar>", explainPod.Out, StringComparison.Ordinal);
        Assert.Contains("valueFrom\t<EnvVarSource>", explainPod.Out, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Kubectl_edit_scale_rollout_undo_and_describe_work()
    {
        await _cluster.NamespaceAsync("mw-web");
        await _cluster.ApplyAsync(WebDeployment);
        await _cluster.RolledOutAsync("mw-web", "web", "web rolled out");

        var setImage = await KubectlAsync("set", "image", "deployment/web", "-n", "mw-web", "main=web:2");
        Assert.True(setImage.Code == 0, setImage.Err);
        var status = await KubectlAsync("rollout", "status", "deployment/web", "-n", "mw-web", "--timeout=30s");
        Assert.True(status.Code == 0, status.Err);
        var history = await KubectlAsync("rollout", "history", "deployment/web", "-n", "mw-web");
        Assert.Matches(@"REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>", history.Out);

        var undo = await KubectlAsync("rollout", "undo", "deployment/web", "-n", "mw-web");
        Assert.True(undo.Code == 0, undo.Err);
        Assert.Contains("deployment.apps/web rolled back", undo.Out, StringComparison.Ordinal);
        Assert.Equal("web:1", await ImageAsync());

        // kubectl edit: the editor is a program that changes the file; kubectl sends the difference.
        var editor = Path.Combine(_dir, "edit.sh");
        await File.WriteAllTextAsync(editor, "#!/bin/sh\nsed -i 's/image: web:1/image: web:3/' \"$1\"\n");
        File.SetUnixFileMode(editor, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var edit = await KubectlAsync(new Dictionary<string, string> { ["KUBE_EDITOR"] = editor }, "edit", "deployment/web", "-n", "mw-web");
        Assert.True(edit.Code == 0, edit.Err);
        Assert.Contains("deployment.apps/web edited", edit.Out, StringComparison.Ordinal);
        Assert.Equal("web:3", await ImageAsync());

        var scale = await KubectlAsync("scale", "deployment/web", "-n", "mw-web", "--replicas=3");
        Assert.True(scale.Code == 0, scale.Err);
        await _cluster.RolledOutAsync("mw-web", "web", "web scaled and rolled out");

        var describe = await KubectlAsync("describe", "deployment/web", "-n", "mw-web");
        Assert.True(describe.Code == 0, describe.Err);
        Assert.Matches(@"Replicas:\s+3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable", describe.Out);
        Assert.Matches(@"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-", describe.Out);
    }

    private async Task<string?> ImageAsync()
    {
        var json = await KubectlAsync("get", "deployment/web", "-n", "mw-web", "-o", "jsonpath={.spec.template.spec.containers[0].image}");
        return json.Out;
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

    [Fact]
    public async Task Kubectl_json_patch_replaces_adds_and_removes_a_top_level_field()
    {
        await _cluster.NamespaceAsync("app");
        await _cluster.ApplyAsync("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: app}
            data: {mode: production}
            """);
        async Task<JsonElement> DataAsync()
        {
            var got = await KubectlAsync("get", "configmap/settings", "-n", "app", "-o", "json");
            Assert.True(got.Code == 0, got.Err);
            return JsonDocument.Parse(got.Out).RootElement.Clone();
        }

        var replace = await KubectlAsync("patch", "configmap/settings", "-n", "app", "--type=json", "-p", """[{"op":"replace","path":"/data","value":{"mode":"canary","tracing":"on"}}]""");
        Assert.True(replace.Code == 0, replace.Err);
        Assert.Equal("canary", (await DataAsync()).GetProperty("data").GetProperty("mode").GetString());

        var remove = await KubectlAsync("patch", "configmap/settings", "-n", "app", "--type=json", "-p", """[{"op":"remove","path":"/data"}]""");
        Assert.True(remove.Code == 0, remove.Err);
        Assert.False((await DataAsync()).TryGetProperty("data", out _));

        var add = await KubectlAsync("patch", "configmap/settings", "-n", "app", "--type=json", "-p", """[{"op":"add","path":"/data","value":{"mode":"again"}}]""");
        Assert.True(add.Code == 0, add.Err);
        Assert.Equal("again", (await DataAsync()).GetProperty("data").GetProperty("mode").GetString());

        // A path that does not exist is still a 422 that names it, and changes nothing.
        var missing = await KubectlAsync("patch", "configmap/settings", "-n", "app", "--type=json", "-p", """[{"op":"replace","path":"/nothing/here","value":1}]""");
        Assert.NotEqual(0, missing.Code);
        Assert.Contains("/nothing/here", missing.Err, StringComparison.Ordinal);
        Assert.Equal("again", (await DataAsync()).GetProperty("data").GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Kubectl_dry_runs_on_the_server_and_diff_without_server_side_change_nothing()
    {
        await _cluster.NamespaceAsync("app");
        var file = Path.Combine(_dir, "settings.yaml");
        await File.WriteAllTextAsync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: app}\ndata: {mode: production}\n");
        var dryCreate = await KubectlAsync("apply", "-f", file, "--dry-run=server");
        Assert.True(dryCreate.Code == 0, dryCreate.Err);
        Assert.Contains("(server dry run)", dryCreate.Out, StringComparison.Ordinal);
        Assert.NotEqual(0, (await KubectlAsync("get", "configmap/settings", "-n", "app")).Code);

        Assert.Equal(0, (await KubectlAsync("apply", "-f", file)).Code);
        await File.WriteAllTextAsync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: app}\ndata: {mode: canary}\n");
        var diff = await KubectlAsync("diff", "-f", file);
        Assert.True(diff.Code == 1, diff.Err);
        Assert.Contains("+  mode: canary", diff.Out, StringComparison.Ordinal);

        var dryDelete = await KubectlAsync("delete", "configmap/settings", "-n", "app", "--dry-run=server");
        Assert.True(dryDelete.Code == 0, dryDelete.Err);
        var kept = await KubectlAsync("get", "configmap/settings", "-n", "app", "-o", "jsonpath={.data.mode}");
        Assert.Equal((0, "production"), (kept.Code, kept.Out));
    }

    [Fact]
    public async Task Kubectl_create_and_auth_can_i_speak_protobuf_and_read_what_json_reads()
    {
        await _cluster.NamespaceAsync("app");

        // kubectl create uses client-go's typed clients: the body goes as protobuf and the answer comes back in it.
        var created = await KubectlAsync("create", "configmap", "settings", "-n", "app", "--from-literal=mode=production", "--from-literal=empty=", "-o", "json", "-v=8");
        Assert.True(created.Code == 0, created.Err);
        Assert.Contains("Content-Type: application/vnd.kubernetes.protobuf", RequestHeaders(created.Err), StringComparison.Ordinal);
        Assert.Contains("Content-Type: application/vnd.kubernetes.protobuf", ResponseHeaders(created.Err), StringComparison.Ordinal);
        var read = await KubectlAsync("get", "configmap/settings", "-n", "app", "-o", "json");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(read.Out), JsonNode.Parse(created.Out)), $"protobuf:\n{created.Out}\njson:\n{read.Out}");
        Assert.Equal(string.Empty, JsonNode.Parse(read.Out)!["data"]!["empty"]!.GetValue<string>());

        // A pointer field's zero survives protobuf (replicas 0 is not "unset", which would default to 1); a strategy a
        // typed client sends empty is defaulted as Go defaults it.
        var deployment = await KubectlAsync("create", "deployment", "web", "-n", "app", "--image=docker-registry.wikimedia.org/mediawiki:1", "--replicas=0", "-o", "json");
        Assert.True(deployment.Code == 0, deployment.Err);
        var spec = JsonNode.Parse(deployment.Out)!["spec"]!;
        Assert.Equal(0, spec["replicas"]!.GetValue<int>());
        Assert.Equal("RollingUpdate", spec["strategy"]!["type"]!.GetValue<string>());
        Assert.Equal("25%", spec["strategy"]!["rollingUpdate"]!["maxSurge"]!.GetValue<string>());
        Assert.Equal("IfNotPresent", spec["template"]!["spec"]!["containers"]![0]!["imagePullPolicy"]!.GetValue<string>());
        // kubectl prints a typed object's empty template time as null (Go's zero Time); the JSON it read has none.
        Assert.Equal("null", spec["template"]!["metadata"]!.AsObject().TryGetPropertyValue("creationTimestamp", out var zero) && zero is null ? "null" : "set");
        spec["template"]!["metadata"]!.AsObject().Remove("creationTimestamp");
        var stored = JsonNode.Parse((await KubectlAsync("get", "deployment/web", "-n", "app", "-o", "json")).Out)!;
        Assert.True(JsonNode.DeepEquals(stored["spec"], spec), $"protobuf:\n{spec}\njson:\n{stored["spec"]}");

        // SelfSubjectAccessReview and SelfSubjectRulesReview, both in protobuf.
        var canI = await KubectlAsync("auth", "can-i", "create", "deployments", "-n", "app", "-v=8");
        Assert.Equal((0, "yes"), (canI.Code, canI.Out.Trim()));
        Assert.Contains("Content-Type: application/vnd.kubernetes.protobuf", ResponseHeaders(canI.Err), StringComparison.Ordinal);
        var list = await KubectlAsync("auth", "can-i", "--list", "-n", "app");
        Assert.True(list.Code == 0, list.Err);
        Assert.Contains("selfsubjectaccessreviews.authorization.k8s.io", list.Out, StringComparison.Ordinal);

        // A typed delete sends its DeleteOptions in protobuf.
        var deleted = await KubectlAsync("delete", "configmap/settings", "-n", "app", "--grace-period=0", "--force");
        Assert.True(deleted.Code == 0, deleted.Err);
        Assert.NotEqual(0, (await KubectlAsync("get", "configmap/settings", "-n", "app")).Code);
    }

    [Fact]
    public async Task Kubectl_apply_prune_with_its_default_list_removes_what_left_the_file()
    {
        await _cluster.NamespaceAsync("app");
        var file = Path.Combine(_dir, "set.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: kept, namespace: app, labels: {set: web}}
            data: {a: b}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: dropped, namespace: app, labels: {set: web}}
            data: {a: b}
            """);
        var first = await KubectlAsync("apply", "--prune", "-l", "set=web", "-n", "app", "-f", file);
        Assert.True(first.Code == 0, first.Err);

        // kubectl lists every kind of its default prune list (Endpoints, PersistentVolumeClaims, DaemonSets, …).
        await File.WriteAllTextAsync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: app, labels: {set: web}}\ndata: {a: b}\n");
        var second = await KubectlAsync("apply", "--prune", "-l", "set=web", "-n", "app", "-f", file);
        Assert.True(second.Code == 0, second.Err);
        Assert.Contains("configmap/dropped pruned", second.Out, StringComparison.Ordinal);
        Assert.NotEqual(0, (await KubectlAsync("get", "configmap/dropped", "-n", "app")).Code);
        Assert.Equal(0, (await KubectlAsync("get", "configmap/kept", "-n", "app")).Code);
    }

    [Fact]
    public async Task Kubectl_rolls_out_a_daemon_set_on_every_node_and_again_on_a_new_template()
    {
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Nodes = 3 });
        var kubeconfig = Path.Combine(_dir, "three-nodes");
        await File.WriteAllTextAsync(kubeconfig, cluster.Kubeconfig());
        var env = new Dictionary<string, string> { ["KUBECONFIG"] = kubeconfig };
        await cluster.NamespaceAsync("logs");
        var file = Path.Combine(_dir, "ds.yaml");
        async Task ApplyAsync(string image)
        {
            await File.WriteAllTextAsync(file, $$$"""
                apiVersion: apps/v1
                kind: DaemonSet
                metadata: {name: rsyslog, namespace: logs}
                spec:
                  selector: {matchLabels: {app: rsyslog}}
                  template:
                    metadata: {labels: {app: rsyslog}}
                    spec:
                      containers:
                      - {name: rsyslog, image: "{{{image}}}" }
                """);
            var applied = await KubectlAsync(env, "apply", "-f", file);
            Assert.True(applied.Code == 0, applied.Err);
            var rollout = await KubectlAsync(env, "rollout", "status", "daemonset/rsyslog", "-n", "logs", "--timeout=60s");
            Assert.True(rollout.Code == 0, rollout.Out + rollout.Err);
        }

        await ApplyAsync("docker-registry.wikimedia.org/rsyslog:1");
        var pods = await KubectlAsync(env, "get", "pods", "-n", "logs", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {.spec.containers[0].image}{\"\\n\"}{end}");
        Assert.Equal(["local-node-1 docker-registry.wikimedia.org/rsyslog:1", "local-node-2 docker-registry.wikimedia.org/rsyslog:1", "local-node-3 docker-registry.wikimedia.org/rsyslog:1"],
            pods.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));

        var table = await KubectlAsync(env, "get", "daemonset/rsyslog", "-n", "logs");
        Assert.Matches(@"(?m)^rsyslog\s+3\s+3\s+3\s+3\s+3\s+<none>\s", table.Out);

        await ApplyAsync("docker-registry.wikimedia.org/rsyslog:2");
        await Cluster.EventuallyAsync(async () =>
        {
            var now = await KubectlAsync(env, "get", "pods", "-n", "logs", "-o", "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}");
            var images = now.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return images.Length == 3 && images.All(i => i.EndsWith(":2", StringComparison.Ordinal)) ? "rolled" : null;
        }, "every node on rsyslog:2", 60);
    }

    [Fact]
    public async Task Kubectl_rolls_out_a_stateful_set_in_order_and_a_partitioned_update_only_above_its_partition()
    {
        await _cluster.NamespaceAsync("db");
        var file = Path.Combine(_dir, "sts.yaml");
        async Task ApplyAsync(string image, int partition, bool wait = true)
        {
            await File.WriteAllTextAsync(file, $$$"""
                apiVersion: apps/v1
                kind: StatefulSet
                metadata: {name: mariadb, namespace: db}
                spec:
                  replicas: 3
                  serviceName: mariadb
                  selector: {matchLabels: {app: mariadb}}
                  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: {{{partition}}} } }
                  template:
                    metadata: {labels: {app: mariadb}}
                    spec:
                      containers:
                      - {name: mariadb, image: "{{{image}}}" }
                """);
            var applied = await KubectlAsync("apply", "-f", file);
            Assert.True(applied.Code == 0, applied.Err);
            if (wait)
            {
                var rollout = await KubectlAsync("rollout", "status", "statefulset/mariadb", "-n", "db", "--timeout=60s");
                Assert.True(rollout.Code == 0, rollout.Out + rollout.Err);
            }
        }

        async Task<string[]> PodsAsync() =>
            (await KubectlAsync("get", "pods", "-n", "db", "--sort-by=.metadata.name", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.hostname}.{.spec.subdomain} {.spec.containers[0].image}{\"\\n\"}{end}"))
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        // Made in order: while mariadb-1 crashes (an injected fault), mariadb-2 is not made; once it runs, it is.
        using var http = _cluster.Http();
        (await http.PostAsync("/capstan/faults", new StringContent("""{"type": "crashloop", "namespace": "db", "selector": "statefulset.kubernetes.io/pod-name=mariadb-1"}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        await ApplyAsync("docker-registry.wikimedia.org/mariadb:10.6", 0, wait: false);
        await Cluster.EventuallyAsync(async () =>
        {
            var restarts = await KubectlAsync("get", "pod/mariadb-1", "-n", "db", "-o", "jsonpath={.status.containerStatuses[0].restartCount}");
            return restarts.Code == 0 && int.TryParse(restarts.Out, out var n) && n > 0 ? "crashed" : null;
        }, "mariadb-1 to crash", 30);
        Assert.Equal(["mariadb-0", "mariadb-1"], (await PodsAsync()).Select(p => p.Split(' ')[0]));
        (await http.DeleteAsync("/capstan/faults")).EnsureSuccessStatusCode();
        var rolled = await KubectlAsync("rollout", "status", "statefulset/mariadb", "-n", "db", "--timeout=60s");
        Assert.True(rolled.Code == 0, rolled.Out + rolled.Err);
        Assert.Equal(["mariadb-0 mariadb-0.mariadb docker-registry.wikimedia.org/mariadb:10.6", "mariadb-1 mariadb-1.mariadb docker-registry.wikimedia.org/mariadb:10.6", "mariadb-2 mariadb-2.mariadb docker-registry.wikimedia.org/mariadb:10.6"], await PodsAsync());

        // A partition of 2 updates only mariadb-2; the rollout says the partitioned roll out is complete.
        await ApplyAsync("docker-registry.wikimedia.org/mariadb:10.11", 2);
        await Cluster.EventuallyAsync(async () => (await PodsAsync()) is [var a, var b, var c] && c.EndsWith(":10.11", StringComparison.Ordinal) && a.EndsWith(":10.6", StringComparison.Ordinal) && b.EndsWith(":10.6", StringComparison.Ordinal) ? "partitioned" : null, "only mariadb-2 on 10.11", 60);
    }

    [Fact]
    public async Task Kubectl_events_watch_reads_protobuf_watch_frames()
    {
        await _cluster.NamespaceAsync("app");

        // kubectl events -w is a typed client's watch: the stream is length-prefixed protobuf WatchEvents.
        var psi = new ProcessStartInfo("kubectl", ["events", "-n", "app", "--watch", "-v=8"]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = _dir;
        using var watch = Process.Start(psi)!;
        var log = new StringBuilder();
        watch.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        watch.BeginErrorReadLine();
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            // The stream is open once kubectl logged the answer's headers; what happens after comes through it.
            await Cluster.EventuallyAsync(() => Task.FromResult(Locked(log).Contains("stream=watch", StringComparison.Ordinal) ? "open" : null), "the watch to open", 60);
            Assert.Contains("Content-Type: application/vnd.kubernetes.protobuf;stream=watch", ResponseHeaders(Locked(log)), StringComparison.Ordinal);
            var run = await KubectlAsync("run", "probe", "-n", "app", "--image=docker-registry.wikimedia.org/mediawiki:1");
            Assert.True(run.Code == 0, run.Err);
            string? line;
            while ((line = await watch.StandardOutput.ReadLineAsync(deadline.Token)) is not null && !line.Contains("Pod/probe", StringComparison.Ordinal))
            {
            }

            Assert.NotNull(line);
            Assert.Contains("Scheduled", line, StringComparison.Ordinal);
        }
        finally
        {
            watch.Kill();
            await watch.WaitForExitAsync();
        }
    }

    private static string Locked(StringBuilder log)
    {
        lock (log)
        {
            return log.ToString();
        }
    }

    /// <summary>The request headers kubectl -v=8 logged.</summary>
    private static string RequestHeaders(string log) => string.Join('\n', HeaderBlocks(log, "Request Headers:"));

    /// <summary>The response headers kubectl -v=8 logged.</summary>
    private static string ResponseHeaders(string log) => string.Join('\n', HeaderBlocks(log, "Response Headers:"));

    private static IEnumerable<string> HeaderBlocks(string log, string heading)
    {
        // Each header is a line of its own after the heading, indented by four spaces after the log prefix's ']'.
        var inside = false;
        foreach (var line in log.Split('\n'))
        {
            var text = line[(line.IndexOf(']', StringComparison.Ordinal) + 1)..];
            if (text.Contains(heading, StringComparison.Ordinal))
            {
                inside = true;
            }
            else if (inside && text.StartsWith("    ", StringComparison.Ordinal))
            {
                yield return text.Trim();
            }
            else
            {
                inside = false;
            }
        }
    }
}
