using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Rendering;

/// <summary>
/// The configuration files a MediaWiki pod mounts, generated from the layered values. Structured formats
/// (Envoy YAML, mcrouter JSON) are built as trees and serialized; httpd, php-fpm, rsyslog and msmtp files are
/// line-oriented text.
/// </summary>
internal static class MediaWikiConfigFiles
{
    public const int EnvoyAdminPort = 9361;

    public static Dictionary<string, string> Envoy(ReleaseContext ctx, bool inbound)
    {
        var listeners = new JsonArray();
        if (inbound)
        {
            listeners.Add(Listener("tls", ctx.TlsPort, "0.0.0.0", "local_httpd", tls: true));
        }

        foreach (var l in ctx.Values.MeshListeners)
        {
            listeners.Add(Listener(l.Name, l.Port, "127.0.0.1", l.Name, tls: false));
        }

        var clusters = new JsonArray();
        if (inbound)
        {
            clusters.Add(Cluster("local_httpd", "127.0.0.1", ctx.Values.Httpd.Port, tls: false));
        }

        foreach (var l in ctx.Values.MeshListeners)
        {
            var (host, port) = SplitHostPort(l.Upstream);
            clusters.Add(Cluster(l.Name, host, port, tls: true));
        }

        var config = new JsonObject
        {
            ["admin"] = new JsonObject
            {
                ["address"] = SocketAddress("127.0.0.1", EnvoyAdminPort),
            },
            ["static_resources"] = new JsonObject
            {
                ["listeners"] = listeners,
                ["clusters"] = clusters,
            },
        };

        var files = new Dictionary<string, string>(StringComparer.Ordinal) { ["envoy.yaml"] = YamlEmitter.Emit(config) };
        if (inbound)
        {
            var sds = new JsonObject
            {
                ["resources"] = new JsonArray(new JsonObject
                {
                    ["@type"] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                    ["name"] = "tls_sds",
                    ["tls_certificate"] = new JsonObject
                    {
                        ["certificate_chain"] = new JsonObject { ["filename"] = "/etc/envoy/ssl/tls.crt" },
                        ["private_key"] = new JsonObject { ["filename"] = "/etc/envoy/ssl/tls.key" },
                    },
                }),
            };
            files["tls_certificate_sds_secret.yaml"] = YamlEmitter.Emit(sds);
        }

        return files;
    }

    public static Dictionary<string, string> HttpdSites(ReleaseContext ctx)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var index = 1;
        foreach (var site in ctx.Values.Httpd.Sites)
        {
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"<VirtualHost *:{ctx.Values.Httpd.Port}>\n");
            sb.Append(CultureInfo.InvariantCulture, $"    ServerName {site.ServerName}\n");
            if (site.Aliases.Count > 0)
            {
                sb.Append("    ServerAlias ").Append(string.Join(' ', site.Aliases)).Append('\n');
            }

            sb.Append(CultureInfo.InvariantCulture, $"    DocumentRoot {site.DocumentRoot}\n");
            sb.Append("    RewriteEngine On\n");
            sb.Append("    RewriteRule ^/wiki/(.*)$ /w/index.php?title=$1 [L,QSA,PT]\n");
            sb.Append("    <FilesMatch \"\\.php$\">\n");
            sb.Append("        SetHandler \"proxy:unix:/run/shared/fpm-www.sock|fcgi://localhost\"\n");
            sb.Append("    </FilesMatch>\n");
            sb.Append("</VirtualHost>\n");
            files[string.Create(CultureInfo.InvariantCulture, $"{index:00}-{site.Name}.conf")] = sb.ToString();
            index++;
        }

        files[string.Create(CultureInfo.InvariantCulture, $"{index:00}-static.conf")] =
            $"<VirtualHost *:{ctx.Values.Httpd.Port.ToString(CultureInfo.InvariantCulture)}>\n    ServerName static.local\n    DocumentRoot /srv/mediawiki/docroot/static\n</VirtualHost>\n";
        return files;
    }

    public static Dictionary<string, string> HttpdEarly(ReleaseContext ctx) => new(StringComparer.Ordinal)
    {
        ["00-aaa.conf"] =
            $"# Loaded before any site.\nServerName {ctx.Namespace}.{ctx.Datacenter}.local\nServerSignature Off\nServerTokens Prod\n" +
            "<Location /healthz>\n    SetHandler server-status\n    Require all granted\n</Location>\n",
    };

    public static Dictionary<string, string> ClusterFile(ReleaseContext ctx) => new(StringComparer.Ordinal) { ["wikimedia-cluster"] = ctx.Datacenter + "\n" };

    public static Dictionary<string, string> Mail(ReleaseContext ctx) => new(StringComparer.Ordinal)
    {
        [".msmtprc"] = $"account default\nhost {ctx.Values.MailSmarthost}\nport 25\nfrom wiki@{ctx.Project}.local\nauth off\ntls off\n",
    };

    public static Dictionary<string, string> PhpEnvVars(ReleaseContext ctx)
    {
        var statsd = KubeNames.ServiceEnvPrefix(StatsdExporterRenderer.ServiceName("prometheus"));
        var sb = new StringBuilder();
        sb.Append("; Environment of the php-fpm pool. $VAR reads the container's environment.\n");
        sb.Append(CultureInfo.InvariantCulture, $"env[SERVERGROUP] = {ctx.Namespace}\n");
        sb.Append(CultureInfo.InvariantCulture, $"env[WMF_DATACENTER] = {ctx.Datacenter}\n");
        sb.Append(CultureInfo.InvariantCulture, $"env[STATSD_EXPORTER_HOST] = ${statsd}_SERVICE_HOST\n");
        sb.Append(CultureInfo.InvariantCulture, $"env[STATSD_EXPORTER_PORT] = {ctx.Values.Monitoring.StatsdPort}\n");
        foreach (var (key, value) in ctx.Values.Php.Env)
        {
            sb.Append(CultureInfo.InvariantCulture, $"env[{key}] = {value}\n");
        }

        return new Dictionary<string, string>(StringComparer.Ordinal) { ["envvars.inc"] = sb.ToString() };
    }

    public static Dictionary<string, string> Rsyslog(ReleaseContext ctx)
    {
        var logging = ctx.Values.Logging;
        var topic = string.IsNullOrEmpty(logging.Topic) ? $"rsyslog-{ctx.Namespace}" : logging.Topic;

        // Without brokers, logs go to the container's standard output (an environment's own logging).
        var actions = logging.KafkaBrokers.Count == 0
            ? "action(type=\"omstdout\" template=\"ecs_json\")\n"
            : $"action(type=\"omkafka\" broker=[\"{string.Join(",", logging.KafkaBrokers)}\"] topic=\"{topic}\" template=\"ecs_json\")\n";
        if (logging.Udp2Log.Length > 0)
        {
            var (udpHost, udpPort) = SplitHostPort(logging.Udp2Log);
            actions += $"action(type=\"omfwd\" target=\"{udpHost}\" port=\"{udpPort.ToString(CultureInfo.InvariantCulture)}\" protocol=\"udp\")\n";
        }

        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["00-max-message-size.conf"] = "$MaxMessageSize 64k\n",
            ["10-templates.conf"] = "template(name=\"ecs_json\" type=\"list\") {\n    property(name=\"msg\" format=\"json\")\n}\n",
            ["20-mediawiki.conf"] = "input(type=\"imfile\" File=\"/var/log/php-fpm/error.log\" Tag=\"php-fpm-error\")\n" + actions,
        };
    }

    public static Dictionary<string, string> Mcrouter(ReleaseContext ctx)
    {
        var pools = new JsonObject();
        foreach (var (name, servers) in ctx.Values.Mcrouter.Pools)
        {
            pools[name] = new JsonObject { ["servers"] = new JsonArray([.. servers.Select(s => (JsonNode)JsonValue.Create(s))]) };
        }

        var firstPool = ctx.Values.Mcrouter.Pools.Keys.FirstOrDefault() ?? "none";
        var config = new JsonObject
        {
            ["pools"] = pools,
            ["routes"] = new JsonArray(new JsonObject
            {
                ["aliases"] = new JsonArray(ctx.Values.Mcrouter.RoutePrefix),
                ["route"] = $"PoolRoute|{firstPool}",
            }),
        };
        return new Dictionary<string, string>(StringComparer.Ordinal) { ["config.json"] = KubeSerializer.ToJson(config) + "\n" };
    }

    public static (string Host, int Port) SplitHostPort(string address)
    {
        var colon = address.LastIndexOf(':');
        if (colon > 0 && int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return (address[..colon], port);
        }

        return (address, 443);
    }

    private static JsonObject SocketAddress(string address, int port) => new()
    {
        ["socket_address"] = new JsonObject { ["address"] = address, ["port_value"] = port },
    };

    private static JsonObject Listener(string name, int port, string address, string cluster, bool tls)
    {
        var filterChain = new JsonObject
        {
            ["filters"] = new JsonArray(new JsonObject
            {
                ["name"] = "envoy.filters.network.http_connection_manager",
                ["typed_config"] = new JsonObject
                {
                    ["@type"] = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    ["stat_prefix"] = name,
                    ["route_config"] = new JsonObject
                    {
                        ["virtual_hosts"] = new JsonArray(new JsonObject
                        {
                            ["name"] = name,
                            ["domains"] = new JsonArray("*"),
                            ["routes"] = new JsonArray(new JsonObject
                            {
                                ["match"] = new JsonObject { ["prefix"] = "/" },
                                ["route"] = new JsonObject { ["cluster"] = cluster, ["timeout"] = "201s" },
                            }),
                        }),
                    },
                    ["http_filters"] = new JsonArray(new JsonObject { ["name"] = "envoy.filters.http.router" }),
                },
            }),
        };
        if (tls)
        {
            filterChain["transport_socket"] = new JsonObject
            {
                ["name"] = "envoy.transport_sockets.tls",
                ["typed_config"] = new JsonObject
                {
                    ["@type"] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    ["common_tls_context"] = new JsonObject
                    {
                        ["tls_certificate_sds_secret_configs"] = new JsonArray(new JsonObject
                        {
                            ["name"] = "tls_sds",
                            ["sds_config"] = new JsonObject { ["path_config_source"] = new JsonObject { ["path"] = "/etc/envoy/tls_certificate_sds_secret.yaml" } },
                        }),
                    },
                },
            };
        }

        return new JsonObject
        {
            ["name"] = name,
            ["address"] = SocketAddress(address, port),
            ["filter_chains"] = new JsonArray(filterChain),
        };
    }

    private static JsonObject Cluster(string name, string host, int port, bool tls)
    {
        var cluster = new JsonObject
        {
            ["name"] = name,
            ["type"] = "STRICT_DNS",
            ["connect_timeout"] = "0.25s",
            ["load_assignment"] = new JsonObject
            {
                ["cluster_name"] = name,
                ["endpoints"] = new JsonArray(new JsonObject
                {
                    ["lb_endpoints"] = new JsonArray(new JsonObject
                    {
                        ["endpoint"] = new JsonObject { ["address"] = SocketAddress(host, port) },
                    }),
                }),
            },
        };
        if (tls)
        {
            cluster["transport_socket"] = new JsonObject
            {
                ["name"] = "envoy.transport_sockets.tls",
                ["typed_config"] = new JsonObject
                {
                    ["@type"] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    ["sni"] = host,
                },
            };
        }

        return cluster;
    }
}
