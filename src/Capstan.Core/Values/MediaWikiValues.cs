using System.Collections.Immutable;

namespace Capstan.Core.Values;

/// <summary>The typed values a release renders from, after layering. Defaults are the real system's.</summary>
public sealed record MediaWikiValues(
    ImageValues Images,
    PhpValues Php,
    HttpdValues Httpd,
    McrouterValues Mcrouter,
    IReadOnlyList<MeshListener> MeshListeners,
    LoggingValues Logging,
    GeoIpValues GeoIp,
    string MailSmarthost,
    MonitoringValues Monitoring,
    ImmutableSortedDictionary<string, ResourceValues> Resources,
    RolloutValues Rollout,
    IReadOnlyList<EgressRule> Egress,
    SecretValues Secrets,
    int? TlsNodePort,
    AutoscalingValues? Autoscaling = null);

/// <summary>
/// Autoscaling of a release: Capstan renders an <c>autoscaling/v2</c> HorizontalPodAutoscaler with these bounds and a
/// CPU utilisation target, and leaves the Deployment's <c>replicas</c> to it (never resets what it scaled to).
/// </summary>
public sealed record AutoscalingValues(int Min, int Max, int TargetCpuPercent);

/// <summary>Image references; <see cref="MediaWiki"/> is normally written by a deploy.</summary>
public sealed record ImageValues(
    string? MediaWiki,
    string Webserver,
    string TlsProxy,
    string Mcrouter,
    string Rsyslog,
    string HttpdExporter,
    string PhpFpmExporter,
    string StatsdExporter);

/// <summary>php-fpm and PHP settings.</summary>
public sealed record PhpValues(
    string Version,
    int Workers,
    int OpcacheMemoryMb,
    int OpcacheMaxFiles,
    int OpcacheInternedStringsMb,
    int ApcShmMb,
    int RequestTimeoutSeconds,
    int SlowlogTimeoutSeconds,
    int MaxExecutionTimeSeconds,
    bool DisplayErrors,
    ImmutableSortedDictionary<string, string> Env);

/// <summary>Apache httpd settings and the virtual hosts (generated infrastructure data).</summary>
public sealed record HttpdValues(int Port, IReadOnlyList<HttpdSite> Sites, string LogFormat);

/// <summary>One virtual host.</summary>
public sealed record HttpdSite(string Name, string ServerName, IReadOnlyList<string> Aliases, string DocumentRoot);

/// <summary>mcrouter's port, route prefix and memcached pools (generated infrastructure data).</summary>
public sealed record McrouterValues(int Port, string RoutePrefix, ImmutableSortedDictionary<string, IReadOnlyList<string>> Pools);

/// <summary>A service-proxy listener the TLS proxy offers the app on localhost.</summary>
public sealed record MeshListener(string Name, int Port, string Upstream);

/// <summary>
/// Where logs go: the udp2log relay (empty for none) and the Kafka brokers and topic (no brokers: logs go to the
/// container's standard output).
/// </summary>
public sealed record LoggingValues(string Udp2Log, IReadOnlyList<string> KafkaBrokers)
{
    /// <summary>The Kafka topic; null for <c>rsyslog-NAMESPACE</c>.</summary>
    public string? Topic { get; init; }
}

/// <summary>Node paths of the GeoIP databases.</summary>
public sealed record GeoIpValues(string Path, string InfoPath);

/// <summary>statsd-exporter ports.</summary>
public sealed record MonitoringValues(int StatsdPort, int MetricsPort);

/// <summary>Requests and limits of one container.</summary>
public sealed record ResourceValues(
    ImmutableSortedDictionary<string, string> Requests,
    ImmutableSortedDictionary<string, string> Limits);

/// <summary>Rolling-update settings of main releases.</summary>
public sealed record RolloutValues(Kubernetes.IntOrString MaxSurge, Kubernetes.IntOrString MaxUnavailable, int ProgressDeadlineSeconds);

/// <summary>An egress rule of the namespace's common network policy.</summary>
public sealed record EgressRule(string Cidr, IReadOnlyList<int> Ports);

/// <summary>Secret values (from the secrets layer only): private settings files and the TLS certificate.</summary>
public sealed record SecretValues(ImmutableSortedDictionary<string, string> PrivateFiles, string? TlsCertificate, string? TlsKey);
