using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Server-side apply with lists merged by key and ownership per field, between two field managers over HTTP.</summary>
public sealed class ServerSideApplyTests
{
    private const string Path = "/apis/apps/v1/namespaces/app/deployments/web";

    private const string Mine = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: app, annotations: {team: wiki}}
        spec:
          replicas: 2
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - name: main
                  image: web:1
                  env: [{name: MODE, value: production}]
                  ports: [{containerPort: 8080}]
                - name: sidecar
                  image: proxy:1
        """;

    /// <summary>A server-side apply as <paramref name="manager"/>; the response body, or the status code when refused.</summary>
    private static Task<(int Code, JsonObject Body)> ApplyAsAsync(Cluster cluster, string manager, string yaml, bool force = false) =>
        cluster.PatchAsync($"{Path}?fieldManager={manager}{(force ? "&force=true" : string.Empty)}", "application/apply-patch+yaml", Cluster.Yaml(yaml).ToJsonString());

    private static JsonObject Container(JsonObject deployment, string name) =>
        deployment["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == name)!.AsObject();

    private static async Task<Cluster> StartAsync()
    {
        var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        Assert.Equal(200, (await ApplyAsAsync(cluster, "capstan", Mine)).Code);
        return cluster;
    }

    [Fact]
    public async Task An_env_var_and_a_port_another_manager_adds_survive_the_first_manager_s_next_apply()
    {
        await using var cluster = await StartAsync();
        var (code, _) = await ApplyAsAsync(cluster, "injector", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              template:
                spec:
                  containers:
                    - name: main
                      env: [{name: TRACING, value: "on"}]
                      ports: [{containerPort: 9090}]
            """);
        Assert.Equal(200, code);

        var (again, deployment) = await ApplyAsAsync(cluster, "capstan", Mine.Replace("web:1", "web:2", StringComparison.Ordinal));
        Assert.Equal(200, again);
        var main = Container(deployment, "main");
        Assert.Equal("web:2", main["image"]!.GetValue<string>());
        Assert.Equal(["MODE", "TRACING"], main["env"]!.AsArray().Select(e => e!["name"]!.GetValue<string>()));
        Assert.Equal([8080, 9090], main["ports"]!.AsArray().Select(p => p!["containerPort"]!.GetValue<int>()));
        Assert.Equal("TCP", main["ports"]![0]!["protocol"]!.GetValue<string>());

        // managedFields speak the real path syntax: items by their keys.
        var injector = deployment["metadata"]!["managedFields"]!.AsArray().Single(m => m!["manager"]!.GetValue<string>() == "injector")!;
        var item = injector["fieldsV1"]!["f:spec"]!["f:template"]!["f:spec"]!["f:containers"]!["k:{\"name\":\"main\"}"]!;
        Assert.NotNull(item["f:env"]!["k:{\"name\":\"TRACING\"}"]!["f:value"]);
        Assert.NotNull(item["f:ports"]!["k:{\"containerPort\":9090,\"protocol\":\"TCP\"}"]!["."]);
    }

    [Fact]
    public async Task A_field_or_item_the_applier_stops_sending_goes_unless_another_manager_owns_it()
    {
        await using var cluster = await StartAsync();
        Assert.Equal(200, (await ApplyAsAsync(cluster, "labeller", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app, annotations: {team: wiki}}
            """)).Code);

        var withoutSidecar = Mine
            .Replace("metadata: {name: web, namespace: app, annotations: {team: wiki}}", "metadata: {name: web, namespace: app}", StringComparison.Ordinal)
            .Replace("          env: [{name: MODE, value: production}]\n", string.Empty, StringComparison.Ordinal)
            .Replace("        - name: sidecar\n          image: proxy:1", string.Empty, StringComparison.Ordinal);
        Assert.DoesNotContain("sidecar", withoutSidecar, StringComparison.Ordinal);
        var (code, deployment) = await ApplyAsAsync(cluster, "capstan", withoutSidecar);
        Assert.Equal(200, code);
        Assert.Equal(["main"], deployment["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        Assert.Null(Container(deployment, "main")["env"]);
        Assert.Equal("wiki", deployment["metadata"]!["annotations"]!["team"]!.GetValue<string>());
    }

    [Fact]
    public async Task Conflicts_are_per_field_and_force_takes_the_field_over()
    {
        await using var cluster = await StartAsync();
        const string Pin = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              template:
                spec:
                  containers: [{name: main, image: "web:hotfix"}]
            """;
        var (refused, status) = await ApplyAsAsync(cluster, "oncall", Pin);
        Assert.Equal(409, refused);
        Assert.Equal(".spec.template.spec.containers[name=\"main\"].image", Assert.Single(status["details"]!["causes"]!.AsArray())!["field"]!.GetValue<string>());
        Assert.Equal(200, (await ApplyAsAsync(cluster, "oncall", Pin, force: true)).Code);

        // The first manager may still change every other field; only the image is someone else's now.
        var (other, _) = await ApplyAsAsync(cluster, "capstan", Mine.Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal).Replace("web:1", "web:hotfix", StringComparison.Ordinal));
        Assert.Equal(200, other);
        var (conflict, again) = await ApplyAsAsync(cluster, "capstan", Mine);
        Assert.Equal(409, conflict);
        Assert.Contains("conflict with \"oncall\": .spec.template.spec.containers[name=\"main\"].image", again["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private static Task<(int Code, JsonObject Body)> StrategicPatchAsync(Cluster cluster, string json) =>
        cluster.PatchAsync($"{Path}?fieldManager=kubectl-edit", "application/strategic-merge-patch+json", json);

    [Fact]
    public async Task A_strategic_merge_patch_merges_lists_by_the_same_keys_and_deletes_items_it_names()
    {
        await using var cluster = await StartAsync();
        var (code, patched) = await StrategicPatchAsync(cluster, """
            {"spec": {"replicas": 4, "template": {"spec": {"containers": [
              {"name": "main", "env": [{"name": "TRACING", "value": "on"}], "ports": [{"containerPort": 8080, "name": "http"}]},
              {"name": "sidecar", "$patch": "delete"}]}}}}
            """);
        Assert.Equal(200, code);
        Assert.Equal(4, patched["spec"]!["replicas"]!.GetValue<int>());
        var containers = patched["spec"]!["template"]!["spec"]!["containers"]!.AsArray();
        var main = Assert.Single(containers)!;
        Assert.Equal("web:1", main["image"]!.GetValue<string>());
        Assert.Equal(["MODE", "TRACING"], main["env"]!.AsArray().Select(e => e!["name"]!.GetValue<string>()));
        var port = Assert.Single(main["ports"]!.AsArray())!;
        Assert.Equal("http", port["name"]!.GetValue<string>());

        var (refused, status) = await StrategicPatchAsync(cluster, """{"spec": {"$unknownDirective": {}}}""");
        Assert.Equal(400, refused);
        Assert.Contains("'$unknownDirective' is not supported", status["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_conflict_with_an_updating_manager_names_its_api_version_and_time_and_the_status_names_the_group()
    {
        await using var cluster = await StartAsync();
        var (code, patched) = await StrategicPatchAsync(cluster, """{"spec": {"replicas": 5}}""");
        Assert.Equal(200, code);
        var edit = patched["metadata"]!["managedFields"]!.AsArray().Single(m => m!["manager"]!.GetValue<string>() == "kubectl-edit")!;
        var at = DateTimeOffset.Parse(edit["time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture).UtcDateTime;

        var (conflict, status) = await ApplyAsAsync(cluster, "capstan", Mine.Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        Assert.Equal(409, conflict);
        Assert.Equal(
            $"Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1 at {at:yyyy-MM-dd'T'HH:mm:ss'Z'}: .spec.replicas",
            status["message"]!.GetValue<string>());
        Assert.Equal($"conflict with \"kubectl-edit\" using apps/v1 at {at:yyyy-MM-dd'T'HH:mm:ss'Z'}", status["details"]!["causes"]![0]!["message"]!.GetValue<string>());
        Assert.Equal("apps", status["details"]!["group"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_status_body_is_written_as_kube_apiserver_writes_it_and_an_empty_namespace_is_unset()
    {
        await using var cluster = await StartAsync();
        using var http = cluster.Http();
        using var missing = await http.GetAsync("/apis/apps/v1/namespaces/app/deployments/nothing");
        var raw = await missing.Content.ReadAsStringAsync();
        Assert.Equal(404, (int)missing.StatusCode);
        Assert.EndsWith("}\n", raw, StringComparison.Ordinal);
        Assert.Contains("\"message\":\"deployments.apps \\\"nothing\\\" not found\"", raw, StringComparison.Ordinal);
        Assert.Contains("\"details\":{\"name\":\"nothing\",\"group\":\"apps\",\"kind\":\"deployments\"}", raw, StringComparison.Ordinal);

        // "namespace": "" in a body is no namespace: the request's applies (kube-apiserver does the same).
        using var created = await http.PostAsync("/api/v1/namespaces/app/configmaps", new StringContent("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":""},"data":{"a":"1"}}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(201, (int)created.StatusCode);
        Assert.Equal("app", JsonNode.Parse(await created.Content.ReadAsStringAsync())!["metadata"]!["namespace"]!.GetValue<string>());
    }
}
