using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Rendering;

/// <summary>
/// Renders the statsd-exporter support release. Its Service, <c>statsd-exporter-&lt;release&gt;</c>, is what
/// MediaWiki pods find through the injected <c>STATSD_EXPORTER_PROMETHEUS_SERVICE_HOST</c>; it must exist before
/// they start.
/// </summary>
public static class StatsdExporterRenderer
{
    /// <summary>The Service (and Deployment) name for a statsd-exporter release.</summary>
    public static string ServiceName(string release) => "statsd-exporter-" + release;

    /// <summary>Renders the release's objects.</summary>
    public static IReadOnlyList<IKubeObject> Render(ReleaseContext ctx)
    {
        var name = ServiceName(ctx.Release.Name);
        var selector = SortedMap.Of(("app", "statsd-exporter"), ("release", ctx.Release.Name));
        var monitoring = ctx.Values.Monitoring;
        var mapping = new JsonObject
        {
            ["mappings"] = new JsonArray(
                new JsonObject
                {
                    ["match"] = "MediaWiki.*.*",
                    ["name"] = "mediawiki_${1}_${2}",
                    ["labels"] = new JsonObject { ["group"] = ctx.Namespace },
                },
                new JsonObject
                {
                    ["match"] = "MediaWiki.*",
                    ["name"] = "mediawiki_${1}",
                    ["labels"] = new JsonObject { ["group"] = ctx.Namespace },
                }),
        };
        var config = new ConfigMap(
            MediaWikiRenderer.Meta(ctx, name + "-config"),
            SortedMap.Of(("prometheus-statsd.conf", YamlEmitter.Emit(mapping))));
        var container = new Container(
            "statsd-exporter",
            ctx.Values.Images.StatsdExporter,
            Args:
            [
                "--statsd.mapping-config=/etc/monitoring/prometheus-statsd.conf",
                $"--statsd.listen-udp=:{MediaWikiRenderer.Invariant(monitoring.StatsdPort)}",
                $"--web.listen-address=:{MediaWikiRenderer.Invariant(monitoring.MetricsPort)}",
            ],
            Ports: [new PortSpec("statsd-udp", monitoring.StatsdPort, "UDP"), new PortSpec("metrics", monitoring.MetricsPort)],
            Resources: new ResourceRequirements(ctx.Values.Resources["statsd-exporter"].Requests, ctx.Values.Resources["statsd-exporter"].Limits),
            ReadinessProbe: new Probe(HttpGet: new HttpGetAction("/metrics", monitoring.MetricsPort), PeriodSeconds: 5),
            VolumeMounts: [new VolumeMount("statsd-config", "/etc/monitoring", ReadOnly: true)]);
        var deployment = new Deployment(
            MediaWikiRenderer.Meta(ctx, name, selector),
            new DeploymentSpec(
                1,
                new LabelSelector(selector),
                DeploymentStrategy.Rolling("25%", 0),
                new PodTemplateSpec(
                    new TemplateMeta(selector),
                    new PodSpec([container], Volumes: [new Volume("statsd-config", ConfigMap: new ConfigMapVolumeSource(name + "-config"))])),
                ProgressDeadlineSeconds: ctx.Values.Rollout.ProgressDeadlineSeconds,
                RevisionHistoryLimit: 10));
        var service = new Service(
            MediaWikiRenderer.Meta(ctx, name, selector),
            new ServiceSpec(
                "ClusterIP",
                selector,
                [
                    new ServicePort("statsd", "UDP", monitoring.StatsdPort, monitoring.StatsdPort),
                    new ServicePort("metrics", "TCP", monitoring.MetricsPort, monitoring.MetricsPort),
                ]));
        return [config, service, deployment];
    }
}
