using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Values;

namespace Capstan.Core.Rendering;

/// <summary>
/// The MediaWiki pod of the real system. Web and async pods run seven containers side by side
/// (<c>mediawiki-&lt;release&gt;-{tls-proxy,httpd,app,mcrouter,rsyslog,httpd-exporter,php-fpm-exporter}</c>).
/// Cli pods run the app as their only main container, with the TLS proxy (service mesh), mcrouter and rsyslog as
/// native sidecars, so that a Job completes when the app exits.
/// </summary>
internal static class MediaWikiPod
{
    public const int HttpdStatusPort = 9181;
    public const int HttpdExporterPort = 9117;
    public const int PhpFpmExporterPort = 9118;
    private const string SharedSocket = "shared-socket";
    private const string PhpLogging = "php-logging";

    public static PodSpec Build(ReleaseContext ctx, string image, bool hasPrivateSettings)
    {
        var cli = ctx.Group.Traits.Serving == ServingKind.Cli;
        var p = ctx.Prefix;
        var v = ctx.Values;
        var app = App(ctx, image, cli, hasPrivateSettings);
        var tlsProxy = TlsProxy(ctx, cli);
        var mcrouter = new Container(
            $"{p}-mcrouter",
            v.Images.Mcrouter,
            Args: ["-f", "/etc/mcrouter/config.json", "-p", MediaWikiRenderer.Invariant(v.Mcrouter.Port), "--route-prefix", v.Mcrouter.RoutePrefix],
            Ports: [new PortSpec("mcrouter", v.Mcrouter.Port)],
            Resources: Resources(v, "mcrouter"),
            ReadinessProbe: new Probe(TcpSocket: new TcpSocketAction(v.Mcrouter.Port), PeriodSeconds: 5),
            VolumeMounts: [new VolumeMount($"{p}-mcrouter-config", "/etc/mcrouter", ReadOnly: true)],
            RestartPolicy: cli ? "Always" : null);
        var rsyslog = new Container(
            $"{p}-rsyslog",
            v.Images.Rsyslog,
            Env:
            [
                FieldEnv("KUBERNETES_NAMESPACE", "metadata.namespace"),
                FieldEnv("KUBERNETES_NODE", "spec.nodeName"),
                FieldEnv("KUBERNETES_POD_NAME", "metadata.name"),
                new EnvVar("KUBERNETES_RELEASE", ctx.Release.Name),
                new EnvVar("KUBERNETES_DEPLOYMENT", ctx.Namespace),
            ],
            Resources: Resources(v, "rsyslog"),
            VolumeMounts: [new VolumeMount($"{p}-rsyslog-config", "/etc/rsyslog.d", ReadOnly: true), new VolumeMount(PhpLogging, "/var/log/php-fpm")],
            RestartPolicy: cli ? "Always" : null);

        if (cli)
        {
            return new PodSpec(
                Containers: [app],
                InitContainers: [tlsProxy, mcrouter, rsyslog],
                Volumes: Volumes(ctx, cli, hasPrivateSettings),
                TerminationGracePeriodSeconds: 30,
                EnableServiceLinks: true);
        }

        var httpd = new Container(
            $"{p}-httpd",
            v.Images.Webserver,
            Env:
            [
                new EnvVar("FCGI_MODE", "FCGI_UNIX"),
                new EnvVar("SERVERGROUP", ctx.Namespace),
                new EnvVar("APACHE_RUN_PORT", MediaWikiRenderer.Invariant(v.Httpd.Port)),
                new EnvVar("SERVER_SIGNATURE", "Off"),
                new EnvVar("LOG_FORMAT", v.Httpd.LogFormat),
                new EnvVar("LOG_SKIP_SYSTEM", "1"),
            ],
            Ports: [new PortSpec("httpd", v.Httpd.Port), new PortSpec("httpd-status", HttpdStatusPort)],
            Resources: Resources(v, "httpd"),
            ReadinessProbe: new Probe(HttpGet: new HttpGetAction("/healthz", v.Httpd.Port), PeriodSeconds: 5, TimeoutSeconds: 2),
            LivenessProbe: new Probe(TcpSocket: new TcpSocketAction(v.Httpd.Port), InitialDelaySeconds: 5),
            VolumeMounts:
            [
                new VolumeMount(SharedSocket, "/run/shared"),
                new VolumeMount($"{p}-httpd-sites", "/etc/apache2/sites-enabled", ReadOnly: true),
                new VolumeMount($"{p}-httpd-early", "/etc/apache2/conf-enabled/early", ReadOnly: true),
            ]);
        var httpdExporter = new Container(
            $"{p}-httpd-exporter",
            v.Images.HttpdExporter,
            Args: ["--scrape_uri", $"http://127.0.0.1:{MediaWikiRenderer.Invariant(HttpdStatusPort)}/server-status?auto"],
            Ports: [new PortSpec("httpd-metrics", HttpdExporterPort)],
            Resources: Resources(v, "httpd-exporter"),
            LivenessProbe: new Probe(TcpSocket: new TcpSocketAction(HttpdExporterPort)));
        var fpmExporter = new Container(
            $"{p}-php-fpm-exporter",
            v.Images.PhpFpmExporter,
            Args: ["--endpoint", "unix:///run/shared/fpm-www.sock;/fpm-status"],
            Ports: [new PortSpec("fpm-metrics", PhpFpmExporterPort)],
            Resources: Resources(v, "php-fpm-exporter"),
            LivenessProbe: new Probe(TcpSocket: new TcpSocketAction(PhpFpmExporterPort)),
            VolumeMounts: [new VolumeMount(SharedSocket, "/run/shared")]);

        return new PodSpec(
            Containers: [tlsProxy, httpd, app, mcrouter, rsyslog, httpdExporter, fpmExporter],
            Volumes: Volumes(ctx, cli, hasPrivateSettings),
            TerminationGracePeriodSeconds: ctx.Group.Traits.Serving == ServingKind.Async ? 1230 : 210,
            EnableServiceLinks: true);
    }

    private static Container App(ReleaseContext ctx, string image, bool cli, bool hasPrivateSettings)
    {
        var p = ctx.Prefix;
        var php = ctx.Values.Php;
        var statsd = KubeNames.ServiceEnvPrefix(StatsdExporterRenderer.ServiceName("prometheus"));
        var env = new List<EnvVar>
        {
            new("SERVERGROUP", ctx.Namespace),
            new("FCGI_MODE", "FCGI_UNIX"),
            new("FCGI_URL", "unix:/run/shared/fpm-www.sock"),
            new("PHP__opcache__memory_consumption", MediaWikiRenderer.Invariant(php.OpcacheMemoryMb)),
            new("PHP__opcache__max_accelerated_files", MediaWikiRenderer.Invariant(php.OpcacheMaxFiles)),
            new("PHP__opcache__interned_strings_buffer", MediaWikiRenderer.Invariant(php.OpcacheInternedStringsMb)),
            new("PHP__apc__shm_size", string.Create(CultureInfo.InvariantCulture, $"{php.ApcShmMb}M")),
            new("PHP__display_errors", php.DisplayErrors ? "On" : "Off"),
            new("PHP__max_execution_time", MediaWikiRenderer.Invariant(php.MaxExecutionTimeSeconds)),
            new("PHP__error_log", "/var/log/php-fpm/error.log"),
            new("FPM__request_terminate_timeout", MediaWikiRenderer.Invariant(php.RequestTimeoutSeconds)),
            new("FPM__request_slowlog_timeout", MediaWikiRenderer.Invariant(php.SlowlogTimeoutSeconds)),
            new("FPM__pm__max_children", MediaWikiRenderer.Invariant(php.Workers)),
            new("FPM__slowlog", "/var/log/php-fpm/slowlog.log"),
            new("MCROUTER_SERVER", $"127.0.0.1:{MediaWikiRenderer.Invariant(ctx.Values.Mcrouter.Port)}"),
            // Kubernetes expands $(VAR) from the Service environment it injects at pod creation; a pod started before the
            // statsd-exporter Service exists keeps the literal text, and php-fpm refuses to start (seed 004).
            new("STATSD_EXPORTER_HOST", $"$({statsd}_SERVICE_HOST)"),
            new("STATSD_EXPORTER_PORT", MediaWikiRenderer.Invariant(ctx.Values.Monitoring.StatsdPort)),
        };

        var mounts = new List<VolumeMount>
        {
            new($"{p}-wikimedia-cluster", "/etc/wikimedia-cluster", ReadOnly: true, SubPath: "wikimedia-cluster"),
            new($"{p}-mail", "/etc/msmtprc", ReadOnly: true, SubPath: ".msmtprc"),
            new(SharedSocket, "/run/shared"),
            new(PhpLogging, "/var/log/php-fpm"),
            new($"{p}-geoip", "/usr/share/GeoIP", ReadOnly: true),
            new($"{p}-geoipinfo", "/usr/share/GeoIPInfo", ReadOnly: true),
            new($"{p}-php-envvars", $"/etc/php/{php.Version}/fpm/env", ReadOnly: true),
        };
        if (hasPrivateSettings)
        {
            mounts.Add(new VolumeMount($"{p}-private-settings", "/etc/mediawiki/private", ReadOnly: true));
        }

        return new Container(
            $"{p}-app",
            image,
            Env: env,
            Resources: Resources(ctx.Values, "app"),
            LivenessProbe: cli ? null : new Probe(Exec: new ExecAction(["/usr/local/bin/php-fpm-ping"]), PeriodSeconds: 10, TimeoutSeconds: 3),
            VolumeMounts: mounts);
    }

    private static Container TlsProxy(ReleaseContext ctx, bool cli)
    {
        var p = ctx.Prefix;
        var mounts = new List<VolumeMount> { new("envoy-config-volume", "/etc/envoy", ReadOnly: true) };
        if (!cli)
        {
            mounts.Add(new VolumeMount("tls-certs-volume", "/etc/envoy/ssl", ReadOnly: true));
        }

        return new Container(
            $"{p}-tls-proxy",
            ctx.Values.Images.TlsProxy,
            Env:
            [
                new EnvVar("SERVICE_NAME", ctx.Namespace),
                new EnvVar("SERVICE_ZONE", ctx.Datacenter),
                new EnvVar("CONCURRENCY", "12"),
                new EnvVar("ADMIN_PORT", MediaWikiRenderer.Invariant(MediaWikiConfigFiles.EnvoyAdminPort)),
                new EnvVar("DRAIN_TIME_S", cli ? "5" : "600"),
                new EnvVar("DRAIN_STRATEGY", "gradual"),
            ],
            Ports: cli ? null : [new PortSpec("https", ctx.TlsPort)],
            Resources: Resources(ctx.Values, "tls-proxy"),
            ReadinessProbe: new Probe(HttpGet: new HttpGetAction("/ready", MediaWikiConfigFiles.EnvoyAdminPort), PeriodSeconds: 5),
            VolumeMounts: mounts,
            RestartPolicy: cli ? "Always" : null);
    }

    private static List<Volume> Volumes(ReleaseContext ctx, bool cli, bool hasPrivateSettings)
    {
        var p = ctx.Prefix;
        var volumes = new List<Volume>();
        if (!cli)
        {
            volumes.Add(new Volume($"{p}-httpd-sites", ConfigMap: new ConfigMapVolumeSource($"{p}-httpd-sites-config")));
            volumes.Add(new Volume($"{p}-httpd-early", ConfigMap: new ConfigMapVolumeSource($"{p}-httpd-early-config")));
        }

        volumes.Add(new Volume($"{p}-wikimedia-cluster", ConfigMap: new ConfigMapVolumeSource($"{p}-wikimedia-cluster-config")));
        volumes.Add(new Volume($"{p}-mail", ConfigMap: new ConfigMapVolumeSource($"{p}-mail-config")));
        volumes.Add(new Volume("envoy-config-volume", ConfigMap: new ConfigMapVolumeSource($"{p}-envoy-config-volume")));
        if (!cli)
        {
            volumes.Add(new Volume("tls-certs-volume", Secret: new SecretVolumeSource($"{p}-tls-certs", DefaultMode: 256)));
        }

        volumes.Add(new Volume(SharedSocket, EmptyDir: new EmptyDirVolumeSource()));
        volumes.Add(new Volume($"{p}-rsyslog-config", ConfigMap: new ConfigMapVolumeSource($"{p}-rsyslog-config")));
        volumes.Add(new Volume(PhpLogging, EmptyDir: new EmptyDirVolumeSource()));
        volumes.Add(new Volume($"{p}-geoip", HostPath: new HostPathVolumeSource(ctx.Values.GeoIp.Path, "Directory")));
        volumes.Add(new Volume($"{p}-geoipinfo", HostPath: new HostPathVolumeSource(ctx.Values.GeoIp.InfoPath, "Directory")));
        volumes.Add(new Volume($"{p}-php-envvars", ConfigMap: new ConfigMapVolumeSource($"{p}-php-envvars")));
        volumes.Add(new Volume($"{p}-mcrouter-config", ConfigMap: new ConfigMapVolumeSource($"{p}-mcrouter-config")));
        if (hasPrivateSettings)
        {
            volumes.Add(new Volume($"{p}-private-settings", Secret: new SecretVolumeSource($"{p}-private-settings", DefaultMode: 256)));
        }

        return volumes;
    }

    private static EnvVar FieldEnv(string name, string path) => new(name, ValueFrom: new EnvVarSource(FieldRef: new ObjectFieldSelector(path)));

    private static ResourceRequirements Resources(MediaWikiValues values, string container)
    {
        var r = values.Resources[container];
        return new ResourceRequirements(r.Requests.Count > 0 ? r.Requests : null, r.Limits.Count > 0 ? r.Limits : null);
    }
}
