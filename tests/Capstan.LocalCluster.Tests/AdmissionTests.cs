using System.Runtime.Versioning;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>What the embedded server does to a write before storing it, as kube-apiserver does, over real HTTP.</summary>
public sealed class AdmissionTests
{
    private const string Web = """
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
                - name: main
                  image: web:1
                  resources: {requests: {cpu: 0.5, memory: 1024Mi}, limits: {memory: 1.5Gi}}
        """;

    [Fact]
    public async Task Quantities_read_back_canonical_and_applying_the_same_text_again_changes_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var applied = await cluster.ApplyAsync(Web);
        var resources = applied["spec"]!["template"]!["spec"]!["containers"]![0]!["resources"]!;
        Assert.Equal("500m", resources["requests"]!["cpu"]!.GetValue<string>());
        Assert.Equal("1Gi", resources["requests"]!["memory"]!.GetValue<string>());
        Assert.Equal("1536Mi", resources["limits"]!["memory"]!.GetValue<string>());

        // The same text again is no change of the spec (the controller may have written the status meanwhile).
        var again = await cluster.ApplyAsync(Web);
        Assert.Equal(1, again["metadata"]!["generation"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(applied["spec"], again["spec"]));

        var limits = await cluster.ApplyAsync("""
            apiVersion: v1
            kind: LimitRange
            metadata: {name: limits, namespace: app}
            spec: {limits: [{type: Container, max: {memory: 2048Mi, cpu: "2000m"}, defaultRequest: {cpu: 0.1}}]}
            """);
        Assert.Equal("""{"memory":"2Gi","cpu":"2"}""", limits["spec"]!["limits"]![0]!["max"]!.ToJsonString());
        Assert.Equal("100m", limits["spec"]!["limits"]![0]!["defaultRequest"]!["cpu"]!.GetValue<string>());
        var unchanged = await cluster.ApplyAsync("""
            apiVersion: v1
            kind: LimitRange
            metadata: {name: limits, namespace: app}
            spec: {limits: [{type: Container, max: {memory: 2048Mi, cpu: "2000m"}, defaultRequest: {cpu: 0.1}}]}
            """);
        Assert.Equal(limits["metadata"]!["resourceVersion"]!.GetValue<string>(), unchanged["metadata"]!["resourceVersion"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("maxSurge: 1", "maxSurge: \"1\"", "spec.strategy.rollingUpdate.maxSurge", "Invalid value: \"1\": a valid percent string must be a numeric string followed by an ending '%'")]
    [InlineData("maxSurge: 1", "maxSurge: 0", "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0")]
    [InlineData("maxSurge: 1", "maxSurge: 101%", "spec.strategy.rollingUpdate.maxSurge", "must not be greater than 100%")]
    [InlineData("labels: {app: web, tier: x}", "labels: {app: other}", "spec.template.metadata.labels", "`selector` does not match template `labels`")]
    [InlineData("name: main", "name: Main", "spec.template.spec.containers[0].name", "Invalid value: \"Main\"")]
    [InlineData("memory: 1024Mi", "memory: 1x", "spec.template.spec.containers[0].resources.requests[memory]", "quantities must match the regular expression")]
    [InlineData("requests: {memory: 1024Mi}}", "requests: {memory: 2Gi}, limits: {memory: 1Gi}}", "spec.template.spec.containers[0].resources.requests[memory]", "Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi")]
    [InlineData("defaultMode: 420", "defaultMode: 1000", "spec.template.spec.volumes[0].secret.defaultMode", "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive")]
    public async Task An_invalid_deployment_is_refused_with_the_field_and_the_server_s_words(string valid, string invalid, string field, string message)
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              selector: {matchLabels: {app: web}}
              strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
              template:
                metadata:
                  labels: {app: web, tier: x}
                spec:
                  containers:
                    - name: main
                      image: web:1
                      resources: {requests: {memory: 1024Mi}}
                  volumes: [{name: tls, secret: {secretName: tls, defaultMode: 420}}]
            """;
        Assert.Contains(valid, yaml, StringComparison.Ordinal);
        await cluster.ApplyAsync(yaml.Replace("name: web, namespace", "name: valid, namespace", StringComparison.Ordinal));

        var refused = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync(yaml.Replace(valid, invalid, StringComparison.Ordinal)));
        var cause = Assert.Single(refused.Causes);
        Assert.Equal(field, cause.Field);
        Assert.Contains(message, cause.Message, StringComparison.Ordinal);
        Assert.StartsWith("Deployment.apps \"web\" is invalid: " + field + ": ", refused.Message, StringComparison.Ordinal);
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("apps/v1", "Deployment", "app", "web"), default));
    }

    [Fact]
    public async Task Immutable_fields_cannot_change()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(Web);
        var selector = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync(Web.Replace("matchLabels: {app: web}", "matchLabels: {app: web, tier: x}", StringComparison.Ordinal)
            .Replace("labels: {app: web}}", "labels: {app: web, tier: x}}", StringComparison.Ordinal)));
        Assert.Equal("spec.selector", Assert.Single(selector.Causes).Field);
        Assert.Contains("field is immutable", selector.Message, StringComparison.Ordinal);

        const string Secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: app}\ntype: Opaque\nstringData: {password: hunter2}\n";
        var secret = await cluster.ApplyAsync(Secret);
        Assert.Equal(Convert.ToBase64String(Encoding.UTF8.GetBytes("hunter2")), secret["data"]!["password"]!.GetValue<string>());
        Assert.Null(secret["stringData"]);
        var type = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync(Secret.Replace("type: Opaque", "type: kubernetes.io/tls", StringComparison.Ordinal)));
        Assert.Equal("type", Assert.Single(type.Causes).Field);

        const string Job = """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: once, namespace: app}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: main, image: "job:1"}]
            """;
        await cluster.ApplyAsync(Job);
        var template = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.ApplyAsync(Job.Replace("job:1", "job:2", StringComparison.Ordinal)));
        Assert.Equal("spec.template", Assert.Single(template.Causes).Field);
    }

    [Fact]
    public async Task Empty_optional_maps_are_dropped()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var map = await cluster.ApplyAsync("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: app, labels: {}, annotations: {}}\ndata: {}\n");
        Assert.Null(map["metadata"]!["labels"]);
        Assert.Null(map["metadata"]!["annotations"]);
        Assert.Null(map["data"]);
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task The_cluster_directory_is_private()
    {
        var dir = Path.Combine(Path.GetTempPath(), "capstan-private-" + Guid.NewGuid().ToString("N"), "clusters", "eqiad");
        try
        {
            await using (var host = await LocalClusterHost.OpenAsync(dir, new LocalClusterOptions(), requireOwnServer: true, default))
            {
                await using var client = new KubeClient(new ClusterConnection(host.Url, System.Text.Encoding.UTF8.GetBytes(host.CertificateAuthorityPem), Token: host.Token), new KubeClientOptions());
                await client.ApplyAsync(Cluster.Yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"), false, false, default);
                await client.ApplyAsync(Cluster.Yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: app}\nstringData: {password: hunter2}\n"), false, false, default);
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            var files = Directory.GetFiles(dir);
            Assert.Contains(Path.Combine(dir, "cluster.db"), files);
            Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(dir))!, recursive: true);
        }
    }
}
