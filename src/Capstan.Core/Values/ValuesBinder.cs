using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Values;

/// <summary>
/// Binds a merged values tree to <see cref="MediaWikiValues"/>. Unknown keys and wrong types are errors at the
/// file and line that set them; absent keys take the defaults of the group's traits.
/// </summary>
public static partial class ValuesBinder
{
    /// <summary>The containers whose resources can be set, by their values key.</summary>
    public static readonly IReadOnlyList<string> ContainerKeys =
        ["tls-proxy", "httpd", "app", "mcrouter", "rsyslog", "httpd-exporter", "php-fpm-exporter", "statsd-exporter"];

    private static readonly string[] TopKeys =
        ["images", "php", "httpd", "mcrouter", "mesh", "logging", "geoip", "mail", "monitoring", "resources", "rollout", "network", "secrets", "tls", "autoscaling"];

    /// <summary>Binds the tree; throws <see cref="RepoValidationException"/> listing every problem.</summary>
    public static MediaWikiValues Bind(ValueMap tree, GroupTraits traits)
    {
        var diagnostics = new DiagnosticBag();
        var r = new NodeReader(diagnostics);
        r.Map(tree, "values", TopKeys);
        var values = new MediaWikiValues(
            BindImages(r, tree["images"]),
            BindPhp(r, tree["php"], traits),
            BindHttpd(r, tree["httpd"]),
            BindMcrouter(r, tree["mcrouter"]),
            BindMesh(r, tree["mesh"]),
            BindLogging(r, tree["logging"]),
            BindGeoIp(r, tree["geoip"]),
            r.String(r.Map(tree["mail"], "mail", ["smarthost"])?["smarthost"], "mail.smarthost") ?? "localhost",
            BindMonitoring(r, tree["monitoring"]),
            BindResources(r, tree["resources"]),
            BindRollout(r, tree["rollout"]),
            BindEgress(r, tree["network"]),
            BindSecrets(r, tree["secrets"]),
            r.Int(r.Map(tree["tls"], "tls", ["node-port"])?["node-port"], "tls.node-port", 1, 65535),
            BindAutoscaling(r, tree["autoscaling"]));
        if (diagnostics.HasErrors)
        {
            throw new RepoValidationException(diagnostics.Sorted());
        }

        return values;
    }

    private static ImageValues BindImages(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "images", ["mediawiki", "webserver", "tls-proxy", "mcrouter", "rsyslog", "httpd-exporter", "php-fpm-exporter", "statsd-exporter"]);
        string Img(string key, string fallback) => r.String(m?[key], $"images.{key}") ?? fallback;
        return new ImageValues(
            r.String(m?["mediawiki"], "images.mediawiki"),
            Img("webserver", "mediawiki-webserver:latest"),
            Img("tls-proxy", "envoy:latest"),
            Img("mcrouter", "mcrouter:latest"),
            Img("rsyslog", "rsyslog:latest"),
            Img("httpd-exporter", "prometheus-apache-exporter:latest"),
            Img("php-fpm-exporter", "prometheus-php-fpm-exporter:latest"),
            Img("statsd-exporter", "prometheus-statsd-exporter:latest"));
    }

    private static PhpValues BindPhp(NodeReader r, ValueNode? node, GroupTraits traits)
    {
        var m = r.Map(node, "php", ["version", "workers", "opcache", "apc-shm-mb", "request-timeout-s", "slowlog-timeout-s", "max-execution-time-s", "display-errors", "env"]);
        var opcache = r.Map(m?["opcache"], "php.opcache", ["memory-mb", "max-files", "interned-strings-mb"]);
        var (timeout, maxExec) = traits.Serving switch
        {
            ServingKind.Async => (1200, 1200),
            ServingKind.Cli => (0, 0),
            _ => (201, 180),
        };
        var env = r.Map(m?["env"], "php.env");
        var envPairs = new List<KeyValuePair<string, string>>();
        foreach (var e in env?.Entries ?? [])
        {
            if (!EnvNameRegex().IsMatch(e.Key))
            {
                r.Diagnostics.Error(e.KeyLocation, $"php.env: '{e.Key}' is not a valid environment variable name");
            }
            else if (r.ScalarText(e.Value, $"php.env.{e.Key}") is { } v)
            {
                envPairs.Add(KeyValuePair.Create(e.Key, v));
            }
        }

        return new PhpValues(
            r.ScalarText(m?["version"], "php.version") ?? "8.1",
            r.Int(m?["workers"], "php.workers", 1, 1024) ?? 8,
            r.Int(opcache?["memory-mb"], "php.opcache.memory-mb", 16, 65536) ?? 1024,
            r.Int(opcache?["max-files"], "php.opcache.max-files", 200, 1_000_000) ?? 24000,
            r.Int(opcache?["interned-strings-mb"], "php.opcache.interned-strings-mb", 1, 4096) ?? 96,
            r.Int(m?["apc-shm-mb"], "php.apc-shm-mb", 1, 65536) ?? 768,
            r.Int(m?["request-timeout-s"], "php.request-timeout-s", 0, 86400) ?? timeout,
            r.Int(m?["slowlog-timeout-s"], "php.slowlog-timeout-s", 0, 86400) ?? 15,
            r.Int(m?["max-execution-time-s"], "php.max-execution-time-s", 0, 86400) ?? maxExec,
            r.Bool(m?["display-errors"], "php.display-errors") ?? false,
            SortedMap.From(envPairs));
    }

    private static HttpdValues BindHttpd(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "httpd", ["port", "sites", "log-format"]);
        var sites = new List<HttpdSite>();
        if (m?["sites"] is { } sitesNode)
        {
            if (sitesNode is not ValueList list)
            {
                r.Diagnostics.Error(sitesNode.Location, $"httpd.sites must be a list, not {sitesNode.Describe()}");
            }
            else
            {
                foreach (var item in list.Items)
                {
                    var s = r.Map(item, "httpd site", ["name", "server-name", "aliases", "document-root"]);
                    if (s is null)
                    {
                        continue;
                    }

                    var name = r.String(s["name"], "httpd site name");
                    var serverName = r.String(s["server-name"], "httpd site server-name");
                    foreach (var key in new[] { "name", "server-name" }.Where(k => s[k] is null))
                    {
                        r.Missing(s, key, "httpd site");
                    }

                    if (name is not null && serverName is not null)
                    {
                        sites.Add(new HttpdSite(name, serverName, r.StringList(s["aliases"], "httpd site aliases") ?? [],
                            r.String(s["document-root"], "httpd site document-root") ?? "/srv/mediawiki/docroot/wikipedia.org"));
                    }
                }
            }
        }

        return new HttpdValues(
            r.Int(m?["port"], "httpd.port", 1, 65535) ?? 8080,
            sites,
            r.String(m?["log-format"], "httpd.log-format") ?? "ecs_k8s");
    }

    private static McrouterValues BindMcrouter(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "mcrouter", ["port", "route-prefix", "pools"]);
        var pools = ImmutableSortedDictionary.CreateBuilder<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var e in r.Map(m?["pools"], "mcrouter.pools")?.Entries ?? [])
        {
            if (r.StringList(e.Value, $"mcrouter.pools.{e.Key}") is { } servers)
            {
                pools[e.Key] = servers;
            }
        }

        return new McrouterValues(
            r.Int(m?["port"], "mcrouter.port", 1, 65535) ?? 11213,
            r.String(m?["route-prefix"], "mcrouter.route-prefix") ?? "/local/mw",
            pools.ToImmutable());
    }

    private static List<MeshListener> BindMesh(NodeReader r, ValueNode? node)
    {
        var result = new List<MeshListener>();
        var m = r.Map(node, "mesh", ["listeners"]);
        if (m?["listeners"] is not { } listNode)
        {
            return result;
        }

        if (listNode is not ValueList list)
        {
            r.Diagnostics.Error(listNode.Location, $"mesh.listeners must be a list, not {listNode.Describe()}");
            return result;
        }

        foreach (var item in list.Items)
        {
            var l = r.Map(item, "mesh listener", ["name", "port", "upstream"]);
            var name = r.String(l?["name"], "mesh listener name");
            var port = r.Int(l?["port"], "mesh listener port", 1, 65535);
            var upstream = r.String(l?["upstream"], "mesh listener upstream");
            if (l is not null)
            {
                foreach (var key in new[] { "name", "port", "upstream" }.Where(k => l[k] is null))
                {
                    r.Missing(l, key, "mesh listener");
                }
            }

            if (name is not null && port is not null && upstream is not null)
            {
                result.Add(new MeshListener(name, port.Value, upstream));
            }
        }

        return result;
    }

    private static LoggingValues BindLogging(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "logging", ["udp2log", "kafka-brokers", "topic"]);
        return new LoggingValues(
            r.String(m?["udp2log"], "logging.udp2log", allowEmpty: true) ?? "localhost:8420",
            r.StringList(m?["kafka-brokers"], "logging.kafka-brokers") ?? [])
        {
            Topic = r.String(m?["topic"], "logging.topic", allowEmpty: true),
        };
    }

    private static GeoIpValues BindGeoIp(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "geoip", ["path", "info-path"]);
        return new GeoIpValues(
            r.String(m?["path"], "geoip.path") ?? "/usr/share/GeoIP",
            r.String(m?["info-path"], "geoip.info-path") ?? "/usr/share/GeoIPInfo");
    }

    private static MonitoringValues BindMonitoring(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "monitoring", ["statsd-port", "metrics-port"]);
        return new MonitoringValues(
            r.Int(m?["statsd-port"], "monitoring.statsd-port", 1, 65535) ?? 9125,
            r.Int(m?["metrics-port"], "monitoring.metrics-port", 1, 65535) ?? 9102);
    }

    private static ImmutableSortedDictionary<string, ResourceValues> BindResources(NodeReader r, ValueNode? node)
    {
        var result = ImmutableSortedDictionary.CreateBuilder<string, ResourceValues>(StringComparer.Ordinal);
        foreach (var key in ContainerKeys)
        {
            result[key] = DefaultResources(key);
        }

        foreach (var e in r.Map(node, "resources", ContainerKeys)?.Entries ?? [])
        {
            var c = r.Map(e.Value, $"resources.{e.Key}", ["requests", "limits"]);
            if (c is null || !result.ContainsKey(e.Key))
            {
                continue;
            }

            var current = result[e.Key];
            var bound = result[e.Key] = new ResourceValues(
                Quantities(r, c["requests"], $"resources.{e.Key}.requests") ?? current.Requests,
                Quantities(r, c["limits"], $"resources.{e.Key}.limits") ?? current.Limits);

            // kube-apiserver refuses a request above its limit; say so here rather than at deploy time.
            foreach (var (resource, request) in bound.Requests)
            {
                if (bound.Limits.TryGetValue(resource, out var limit) && Quantity.TryParse(request, out var asked)
                    && Quantity.TryParse(limit, out var most) && asked.Nanos > most.Nanos)
                {
                    r.Diagnostics.Error((c["requests"] ?? c["limits"] ?? e.Value).Location,
                        $"resources.{e.Key}.requests.{resource}: {request} is more than its limit {limit} (the API server refuses a request above its limit)");
                }
            }
        }

        return result.ToImmutable();
    }

    private static ImmutableSortedDictionary<string, string>? Quantities(NodeReader r, ValueNode? node, string what)
    {
        var m = r.Map(node, what, ["cpu", "memory"]);
        if (m is null)
        {
            return null;
        }

        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var e in m.Entries.Where(e => e.Key is "cpu" or "memory"))
        {
            var text = r.ScalarText(e.Value, $"{what}.{e.Key}");
            if (text is null)
            {
                continue;
            }

            if (!QuantityRegex().IsMatch(text))
            {
                r.Diagnostics.Error(e.Value.Location, $"{what}.{e.Key}: '{text}' is not a Kubernetes quantity (for example 500m, 2, 256Mi, 1Gi)");
                continue;
            }

            pairs.Add(KeyValuePair.Create(e.Key, text));
        }

        return SortedMap.From(pairs);
    }

    private static AutoscalingValues? BindAutoscaling(NodeReader r, ValueNode? node)
    {
        if (node is null)
        {
            return null;
        }

        var m = r.Map(node, "autoscaling", ["min", "max", "target-cpu-percent"]);
        var min = r.Int(m?["min"], "autoscaling.min", 1, 10000);
        var max = r.Int(m?["max"], "autoscaling.max", 1, 10000);
        var target = r.Int(m?["target-cpu-percent"], "autoscaling.target-cpu-percent", 1, 100) ?? 70;
        if (m is not null && (min is null || max is null))
        {
            r.Diagnostics.Error(node.Location, "autoscaling needs both min and max (the replica bounds the autoscaler keeps to)");
            return null;
        }

        if (min > max)
        {
            r.Diagnostics.Error(m!["max"]!.Location, $"autoscaling.max ({max}) must not be below autoscaling.min ({min})");
            return null;
        }

        return min is { } lo && max is { } hi ? new AutoscalingValues(lo, hi, target) : null;
    }

    private static RolloutValues BindRollout(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "rollout", ["max-surge", "max-unavailable", "progress-deadline-s"]);
        return new RolloutValues(
            r.CountOrPercent(m?["max-surge"], "rollout.max-surge") ?? "25%",
            r.CountOrPercent(m?["max-unavailable"], "rollout.max-unavailable") ?? "25%",
            r.Int(m?["progress-deadline-s"], "rollout.progress-deadline-s", 10, 86400) ?? 600);
    }

    private static List<EgressRule> BindEgress(NodeReader r, ValueNode? node)
    {
        var result = new List<EgressRule>();
        var m = r.Map(node, "network", ["egress"]);
        if (m?["egress"] is not { } listNode)
        {
            return result;
        }

        if (listNode is not ValueList list)
        {
            r.Diagnostics.Error(listNode.Location, $"network.egress must be a list, not {listNode.Describe()}");
            return result;
        }

        foreach (var item in list.Items)
        {
            var e = r.Map(item, "egress rule", ["cidr", "ports"]);
            var cidr = r.String(e?["cidr"], "egress rule cidr");
            if (cidr is not null && !CidrRegex().IsMatch(cidr))
            {
                r.Diagnostics.Error(e!["cidr"]!.Location, $"egress rule cidr '{cidr}' is not a CIDR such as 10.0.0.0/8");
                cidr = null;
            }

            var ports = new List<int>();
            if (e?["ports"] is ValueList portList)
            {
                foreach (var p in portList.Items)
                {
                    if (r.Int(p, "egress rule port", 1, 65535) is { } port)
                    {
                        ports.Add(port);
                    }
                }
            }
            else if (e?["ports"] is { } bad)
            {
                r.Diagnostics.Error(bad.Location, $"egress rule ports must be a list of port numbers, not {bad.Describe()}");
            }

            if (cidr is not null)
            {
                result.Add(new EgressRule(cidr, ports));
            }
        }

        return result;
    }

    private static SecretValues BindSecrets(NodeReader r, ValueNode? node)
    {
        var m = r.Map(node, "secrets", ["private", "tls"]);
        var files = new List<KeyValuePair<string, string>>();
        foreach (var e in r.Map(m?["private"], "secrets.private")?.Entries ?? [])
        {
            if (!SecretKeyRegex().IsMatch(e.Key))
            {
                r.Diagnostics.Error(e.KeyLocation, $"secrets.private: '{e.Key}' is not a valid Secret key (letters, digits, '-', '_', '.')");
            }
            else if (r.String(e.Value, $"secrets.private.{e.Key}", allowEmpty: true) is { } text)
            {
                files.Add(KeyValuePair.Create(e.Key, text));
            }
        }

        var tls = r.Map(m?["tls"], "secrets.tls", ["certificate", "key"]);
        return new SecretValues(
            SortedMap.From(files),
            r.String(tls?["certificate"], "secrets.tls.certificate"),
            r.String(tls?["key"], "secrets.tls.key"));
    }

    private static ResourceValues DefaultResources(string container)
    {
        (string, string) Pair(string cpu, string memory) => (cpu, memory);
        var (requests, limits) = container switch
        {
            "app" => (Pair("1", "1Gi"), Pair(string.Empty, "2Gi")),
            "httpd" => (Pair("200m", "200Mi"), Pair("500m", "400Mi")),
            "tls-proxy" => (Pair("200m", "100Mi"), Pair(string.Empty, "350Mi")),
            "rsyslog" => (Pair("100m", "200Mi"), Pair("1", "300Mi")),
            "mcrouter" => (Pair("200m", "100Mi"), Pair("1", "200Mi")),
            _ => (Pair("100m", "50Mi"), Pair("500m", "200Mi")),
        };
        return new ResourceValues(ToMap(requests), ToMap(limits));

        static ImmutableSortedDictionary<string, string> ToMap((string Cpu, string Memory) q) =>
            q.Cpu.Length == 0 ? SortedMap.Of(("memory", q.Memory)) : SortedMap.Of(("cpu", q.Cpu), ("memory", q.Memory));
    }

    [GeneratedRegex("^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")]
    private static partial Regex QuantityRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNameRegex();

    [GeneratedRegex("^[-._a-zA-Z0-9]+$")]
    private static partial Regex SecretKeyRegex();

    [GeneratedRegex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$")]
    private static partial Regex CidrRegex();
}
