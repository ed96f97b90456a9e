using k8s;
using k8s.Models;

namespace Capstan.LocalCluster.Tests;

/// <summary>
/// The official C# client (KubernetesClient), unmodified, reading its typed models from the embedded server: what it
/// needs the server to have written is what kube-apiserver writes.
/// </summary>
public sealed class CSharpClientTests : IAsyncLifetime
{
    private readonly string _kubeconfig = Path.Combine(Path.GetTempPath(), "capstan-csharp-" + Guid.NewGuid().ToString("N"));
    private Cluster _cluster = null!;
    private k8s.Kubernetes _client = null!;

    public async Task InitializeAsync()
    {
        _cluster = await Cluster.StartAsync();
        await File.WriteAllTextAsync(_kubeconfig, _cluster.Kubeconfig());
        _client = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(_kubeconfig));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _cluster.DisposeAsync();
        File.Delete(_kubeconfig);
    }

    [Fact]
    public async Task Reads_a_nodes_spec_and_cordons_it()
    {
        var node = (await _client.CoreV1.ListNodeAsync()).Items.First();
        Assert.NotNull(node.Spec);
        Assert.False(string.IsNullOrEmpty(node.Spec.ProviderID));
        Assert.False(string.IsNullOrEmpty(node.Status.NodeInfo.BootID));
        Assert.NotEqual(true, node.Spec.Unschedulable);

        // kubectl cordon's patch, through the typed client.
        var patch = new V1Patch("""{"spec":{"unschedulable":true}}""", V1Patch.PatchType.StrategicMergePatch);
        var cordoned = await _client.CoreV1.PatchNodeAsync(patch, node.Metadata.Name);
        Assert.True(cordoned.Spec.Unschedulable);
        Assert.True((await _client.CoreV1.ReadNodeAsync(node.Metadata.Name)).Spec.Unschedulable);
    }

    [Fact]
    public async Task Reads_a_pods_status_right_after_creating_it()
    {
        await _cluster.NamespaceAsync("app");
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "probe" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "php", Image = "docker-registry.wikimedia.org/mediawiki:1" }] },
        };
        var created = await _client.CoreV1.CreateNamespacedPodAsync(pod, "app");
        Assert.Equal("Pending", created.Status.Phase);
        Assert.Equal("BestEffort", created.Status.QosClass);
        Assert.Equal("IfNotPresent", created.Spec.Containers[0].ImagePullPolicy);
        Assert.Equal(30, created.Spec.TerminationGracePeriodSeconds);

        // A Service and a Job come back with what kube-apiserver fills in.
        var service = await _client.CoreV1.CreateNamespacedServiceAsync(
            new V1Service { Metadata = new V1ObjectMeta { Name = "web" }, Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "web" }, Ports = [new V1ServicePort { Port = 80 }] } },
            "app");
        Assert.Equal([service.Spec.ClusterIP], service.Spec.ClusterIPs);
        Assert.Equal(["IPv4"], service.Spec.IpFamilies);
        Assert.Equal(("SingleStack", "Cluster", "None"), (service.Spec.IpFamilyPolicy, service.Spec.InternalTrafficPolicy, service.Spec.SessionAffinity));
        var job = await _client.BatchV1.CreateNamespacedJobAsync(
            new V1Job { Metadata = new V1ObjectMeta { Name = "once" }, Spec = new V1JobSpec { Template = new V1PodTemplateSpec { Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "run", Image = "docker-registry.wikimedia.org/mediawiki:1" }] } } } },
            "app");
        Assert.Equal(("NonIndexed", false, "TerminatingOrFailed", 6), (job.Spec.CompletionMode, job.Spec.Suspend, job.Spec.PodReplacementPolicy, job.Spec.BackoffLimit));
    }

    [Fact]
    public async Task Replaces_an_autoscaler_twice_in_a_row_without_a_conflict()
    {
        await _cluster.NamespaceAsync("app");
        await _cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: php, image: docker-registry.wikimedia.org/mediawiki:1}]}
            """);
        var hpa = new V2HorizontalPodAutoscaler
        {
            Metadata = new V1ObjectMeta { Name = "web" },
            Spec = new V2HorizontalPodAutoscalerSpec
            {
                ScaleTargetRef = new V2CrossVersionObjectReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "web" },
                MinReplicas = 2,
                MaxReplicas = 4,
            },
        };
        await _client.AutoscalingV2.CreateNamespacedHorizontalPodAutoscalerAsync(hpa, "app");

        // Read, change, replace; twice. Once the controller has seen the spec and the target's replicas, it writes
        // status only when something changes, so nothing races the client between its read and its write.
        for (var max = 5; max <= 6; max++)
        {
            await Cluster.EventuallyAsync(
                async () =>
                {
                    var seen = await _client.AutoscalingV2.ReadNamespacedHorizontalPodAutoscalerAsync("web", "app");
                    return seen.Status?.ObservedGeneration == seen.Metadata.Generation && seen.Status?.CurrentReplicas == 2 ? seen : null;
                },
                "the autoscaler's status to catch up");
            var live = await _client.AutoscalingV2.ReadNamespacedHorizontalPodAutoscalerAsync("web", "app");
            live.Spec.MaxReplicas = max;
            var replaced = await _client.AutoscalingV2.ReplaceNamespacedHorizontalPodAutoscalerAsync(live, "web", "app");
            Assert.Equal(max, replaced.Spec.MaxReplicas);
        }
    }
}
