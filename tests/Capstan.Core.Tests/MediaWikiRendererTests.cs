using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;

namespace Capstan.Core.Tests;

public sealed class MediaWikiRendererTests
{
    private static readonly string[] WebContainerSuffixes =
        ["tls-proxy", "httpd", "app", "mcrouter", "rsyslog", "httpd-exporter", "php-fpm-exporter"];

    [Fact]
    public void Main_release_has_the_real_systems_names_and_containers()
    {
        var release = FarmFixture.Release("eqiad", "mw-web", "main");
        var deployment = FarmFixture.Single<Deployment>(release);
        Assert.Equal("mw-web.eqiad.main", deployment.Metadata.Name);
        Assert.Equal(352, deployment.Spec.Replicas);
        Assert.Equal("RollingUpdate", deployment.Spec.Strategy.Type);
        Assert.Equal(
            WebContainerSuffixes.Select(s => "mediawiki-main-" + s),
            deployment.Spec.Template.Spec.Containers.Select(c => c.Name));
        Assert.Equal("main", deployment.Spec.Template.Metadata.Labels!["routed_via"]);

        var service = FarmFixture.Single<Service>(release);
        Assert.Equal("mediawiki-main-tls-service", service.Metadata.Name);
        Assert.Equal("main", service.Spec.Selector[MediaWikiRenderer.RoutedViaLabel]);
        Assert.Equal(4450, service.Spec.Ports[0].Port);
        Assert.Equal("NodePort", service.Spec.Type);

        var configMaps = release.Objects.OfType<ConfigMap>().Select(c => c.Metadata.Name).ToList();
        foreach (var expected in new[] { "envoy-config-volume", "httpd-sites-config", "httpd-early-config", "wikimedia-cluster-config", "mail-config", "php-envvars", "rsyslog-config" })
        {
            Assert.Contains("mediawiki-main-" + expected, configMaps);
        }
    }

    [Theory]
    [InlineData("eqiad", 352, 11)]
    [InlineData("codfw", 300, 9)]
    public void Canary_is_routed_via_main_with_ceil_three_percent_and_recreate(string dc, int mainReplicas, int canaryReplicas)
    {
        Assert.Equal(canaryReplicas, (int)Math.Ceiling(mainReplicas * 0.03));
        var release = FarmFixture.Release(dc, "mw-web", "canary");
        var deployment = FarmFixture.Single<Deployment>(release);
        Assert.Equal(canaryReplicas, deployment.Spec.Replicas);
        Assert.Equal("Recreate", deployment.Spec.Strategy.Type);
        Assert.Null(deployment.Spec.Strategy.RollingUpdate);
        Assert.Equal("main", deployment.Spec.Template.Metadata.Labels!["routed_via"]);
        Assert.Equal("canary", deployment.Spec.Selector.MatchLabels["release"]);
        Assert.Empty(release.Objects.OfType<Service>());
    }

    [Theory]
    [InlineData(1, 3, 1)]
    [InlineData(33, 3, 1)]
    [InlineData(34, 3, 2)]
    [InlineData(100, 3, 3)]
    [InlineData(101, 3, 4)]
    [InlineData(90, 5, 5)]
    [InlineData(0, 3, 0)]
    public void Canary_replicas_round_up(int main, int percent, int expected) =>
        Assert.Equal(expected, new CanarySpec("main", percent).ReplicasFor(main));

    [Fact]
    public void Main_service_selects_canary_pods_too()
    {
        var service = FarmFixture.Single<Service>(FarmFixture.Release("eqiad", "mw-api-ext", "main"));
        var canaryPods = FarmFixture.Single<Deployment>(FarmFixture.Release("eqiad", "mw-api-ext", "canary")).Spec.Template.Metadata.Labels!;
        Assert.All(service.Spec.Selector, kv => Assert.Equal(kv.Value, canaryPods[kv.Key]));
    }

    [Fact]
    public void App_container_reads_the_statsd_service_from_the_injected_environment()
    {
        var deployment = FarmFixture.Single<Deployment>(FarmFixture.Release("eqiad", "mw-web", "main"));
        var app = deployment.Spec.Template.Spec.Containers.Single(c => c.Name == "mediawiki-main-app");
        Assert.Contains(app.Env!, e => e.Value == "$(STATSD_EXPORTER_PROMETHEUS_SERVICE_HOST)");

        var statsd = FarmFixture.Release("eqiad", "mw-web", "prometheus");
        var service = FarmFixture.Single<Service>(statsd);
        Assert.Equal("STATSD_EXPORTER_PROMETHEUS", KubeNames.ServiceEnvPrefix(service.Metadata.Name));
    }

    [Fact]
    public void Cli_groups_have_no_httpd_and_no_service()
    {
        foreach (var release in FarmFixture.Renderer().Render(new RenderSelection(Namespace: "mw-cron"), FarmFixture.State()).Releases
                     .Where(r => r.Kind == ReleaseKind.MediaWiki))
        {
            Assert.Empty(release.Objects.OfType<Service>());
            Assert.Empty(release.Objects.OfType<Deployment>());
            foreach (var job in release.Objects.OfType<CronJob>())
            {
                var pod = job.Spec.JobTemplate.Spec.Template.Spec;
                var names = pod.Containers.Concat(pod.InitContainers ?? []).Select(c => c.Name).ToList();
                Assert.DoesNotContain(names, n => n.Contains("httpd", StringComparison.Ordinal));
                Assert.Equal(["mediawiki-main-app"], pod.Containers.Select(c => c.Name));
                Assert.All(pod.InitContainers!, c => Assert.Equal("Always", c.RestartPolicy));
            }
        }
    }

    [Fact]
    public void Traits_follow_the_group_name()
    {
        Assert.Equal(new GroupTraits(ServingKind.Web, false, Availability.ActiveActive), GroupTraits.FromName("mw-web"));
        Assert.Equal(ServingKind.Async, GroupTraits.FromName("mw-jobrunner").Serving);
        Assert.Equal(ServingKind.Async, GroupTraits.FromName("mw-videoscaler-async").Serving);
        Assert.Equal(new GroupTraits(ServingKind.Cli, true, Availability.ActiveActive), GroupTraits.FromName("mw-cron"));
        Assert.Equal(new GroupTraits(ServingKind.Cli, false, Availability.ActiveActive), GroupTraits.FromName("mw-script"));
    }

    [Fact]
    public void Async_groups_get_long_timeouts()
    {
        var deployment = FarmFixture.Single<Deployment>(FarmFixture.Release("eqiad", "mw-jobrunner", "main"));
        var app = deployment.Spec.Template.Spec.Containers.Single(c => c.Name.EndsWith("-app", StringComparison.Ordinal));
        Assert.Equal("1200", app.Env!.Single(e => e.Name == "FPM__request_terminate_timeout").Value);
    }

    [Fact]
    public void Values_layers_apply_in_order()
    {
        // common.yaml: workers 8; mw-web.yaml: 12; codfw/mw-web.yaml: 10 (dc-group beats group).
        string Workers(string dc) => FarmFixture.Single<Deployment>(FarmFixture.Release(dc, "mw-web", "main"))
            .Spec.Template.Spec.Containers.Single(c => c.Name == "mediawiki-main-app").Env!.Single(e => e.Name == "FPM__pm__max_children").Value!;
        Assert.Equal("12", Workers("eqiad"));
        Assert.Equal("10", Workers("codfw"));

        // The deploy-written image file for the canary beats the default image file.
        var canaryImage = FarmFixture.Single<Deployment>(FarmFixture.Release("eqiad", "mw-web", "canary")).Spec.Template.Spec.Containers.Single(c => c.Name == "mediawiki-canary-app").Image;
        var mainImage = FarmFixture.Single<Deployment>(FarmFixture.Release("eqiad", "mw-web", "main")).Spec.Template.Spec.Containers.Single(c => c.Name == "mediawiki-main-app").Image;
        Assert.NotEqual(mainImage, canaryImage);
        Assert.EndsWith("2026-11-21-101204-publish", canaryImage, StringComparison.Ordinal);
    }

    [Fact]
    public void Secrets_are_rendered_into_secrets_and_never_into_config_maps_or_env()
    {
        var result = FarmFixture.Renderer().Render(new RenderSelection(), FarmFixture.State());
        var secretValues = result.Releases.SelectMany(r => r.Objects).OfType<Secret>()
            .SelectMany(s => s.Data.Values)
            .Select(b64 => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64)))
            .Distinct().ToList();
        Assert.Contains(secretValues, v => v.Contains("example-not-a-real-password", StringComparison.Ordinal));
        foreach (var obj in result.Releases.SelectMany(r => r.Objects).Where(o => o is not Secret))
        {
            var yaml = KubeSerializer.ToYaml(obj, revealSecrets: true);
            Assert.DoesNotContain("example-not-a-real-password", yaml, StringComparison.Ordinal);
            Assert.DoesNotContain("BEGIN PRIVATE KEY", yaml, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Masked_output_hides_secret_values()
    {
        var secret = FarmFixture.Release("eqiad", "mw-web", "main").Objects.OfType<Secret>().First(s => s.Type == "Opaque");
        var masked = KubeSerializer.ToYaml(secret);
        Assert.DoesNotContain(secret.Data.Values.First(), masked, StringComparison.Ordinal);
        Assert.Contains(SecretMasker.Masked, masked, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_object_carries_the_standard_and_release_labels()
    {
        var result = FarmFixture.Renderer().Render(new RenderSelection(), FarmFixture.State());
        foreach (var release in result.Releases)
        {
            foreach (var obj in release.Objects)
            {
                var labels = obj.Metadata.Labels!;
                Assert.Equal("capstan", labels["app.kubernetes.io/managed-by"]);
                Assert.Equal(release.Release, labels["app.kubernetes.io/instance"]);
                Assert.Equal("wikifarm", labels["app.kubernetes.io/part-of"]);
                Assert.Equal(release.Namespace, labels["app.kubernetes.io/component"]);
                Assert.Equal(release.Release, labels[ObjectLabels.ReleaseLabel]);
                Assert.Equal(release.Namespace, obj.Metadata.Namespace);
            }
        }
    }

    [Fact]
    public void Rendering_is_deterministic()
    {
        static string All() => string.Concat(FarmFixture.Renderer().Render(new RenderSelection(), FarmFixture.State()).Releases
            .SelectMany(r => r.Objects).Select(o => KubeSerializer.ToYaml(o, revealSecrets: true)));
        Assert.Equal(All(), All());
    }

    [Fact]
    public void Support_releases_render_statsd_exporter_and_network_policies()
    {
        var common = FarmFixture.Release("eqiad", "mw-cron", "mediawiki-common");
        Assert.Equal(2, common.Objects.OfType<NetworkPolicy>().Count());
        var statsd = FarmFixture.Release("eqiad", "mw-cron", "prometheus");
        Assert.Equal("statsd-exporter-prometheus", FarmFixture.Single<Deployment>(statsd).Metadata.Name);
        Assert.Equal("UDP", FarmFixture.Single<Service>(statsd).Spec.Ports[0].Protocol);
    }

    [Fact]
    public void Manifests_releases_keep_their_objects_and_get_the_group_namespace()
    {
        var limits = FarmFixture.Release("eqiad", "mw-debug", "limits");
        var obj = Assert.Single(limits.Objects);
        Assert.Equal("LimitRange", obj.Kind);
        Assert.Equal("mw-debug", obj.Metadata.Namespace);
        Assert.Contains("memory: 8Gi", KubeSerializer.ToYaml(obj), StringComparison.Ordinal);
    }

    [Fact]
    public void Environments_narrow_the_render()
    {
        var releases = FarmFixture.Renderer().Render(new RenderSelection(Subset: "staging"), FarmFixture.State()).Releases;
        Assert.Equal(["eqiad/mw-debug/prometheus", "eqiad/mw-debug/pinkunicorn", "eqiad/mw-web/prometheus", "eqiad/mw-web/main"],
            releases.Select(r => r.Id).OrderBy(x => x.Contains("mw-web", StringComparison.Ordinal)));
    }

    [Fact]
    public void Unknown_selections_name_the_allowed_values()
    {
        var ex = Assert.Throws<Diagnostics.UserInputException>(() => FarmFixture.Renderer().CheckSelection(new RenderSelection(Datacenter: "ulsfo")));
        Assert.Equal("unknown datacenter 'ulsfo' (allowed: eqiad, codfw)", ex.Message);
    }
}
