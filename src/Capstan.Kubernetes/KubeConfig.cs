using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Kubernetes;

/// <summary>Everything needed to reach one cluster as one user.</summary>
public sealed record ClusterConnection(
    Uri Server,
    byte[]? CertificateAuthority = null,
    bool InsecureSkipTlsVerify = false,
    string? ClientCertificatePem = null,
    string? ClientKeyPem = null,
    string? Token = null,
    string? TokenFile = null,
    string? Username = null,
    string? Password = null,
    string? Namespace = null,
    string ContextName = "",
    ExecPlugin? Exec = null,
    Impersonation? Impersonate = null,
    string? TlsServerName = null,
    Uri? ProxyUrl = null)
{
    /// <summary>Who the connection authenticates as, for messages: the user entry's name, else the context's.</summary>
    public string UserName { get; init; } = ContextName;
}

/// <summary>A kubeconfig that cannot be used: the file, where, and why.</summary>
public sealed class KubeConfigException(string message) : CapstanException(RefusalKind.UserError, message);

/// <summary>
/// Loads kubeconfig files as kubectl does: the <c>KUBECONFIG</c> list (':'-separated) merged so that the first file to
/// define a cluster, user or context wins, else <c>~/.kube/config</c>; relative certificate and token paths are
/// relative to the file that names them.
/// </summary>
public sealed class KubeConfig
{
    private readonly Dictionary<string, (ValueMap Map, string Dir)> _clusters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (ValueMap Map, string Dir)> _users = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ValueMap> _contexts = new(StringComparer.Ordinal);

    /// <summary>The current context of the first file that names one.</summary>
    public string? CurrentContext { get; private set; }

    /// <summary>The context names.</summary>
    public IReadOnlyCollection<string> Contexts => _contexts.Keys;

    /// <summary>Loads from <c>KUBECONFIG</c> or the home directory's <c>.kube/config</c>.</summary>
    public static KubeConfig Load(Func<string, string?> environment)
    {
        var list = environment("KUBECONFIG");
        var files = !string.IsNullOrEmpty(list)
            ? list.Split(':', StringSplitOptions.RemoveEmptyEntries).Where(File.Exists).ToList()
            : [Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config")];
        files = files.Where(File.Exists).ToList();
        if (files.Count == 0)
        {
            throw new KubeConfigException(string.IsNullOrEmpty(list)
                ? "no kubeconfig: ~/.kube/config does not exist and KUBECONFIG is not set"
                : $"none of the KUBECONFIG files exist ({list})");
        }

        return LoadFiles(files);
    }

    /// <summary>Loads and merges the given files in order.</summary>
    public static KubeConfig LoadFiles(IEnumerable<string> files)
    {
        var config = new KubeConfig();
        foreach (var file in files)
        {
            config.Merge(file);
        }

        return config;
    }

    private void Merge(string file)
    {
        var diagnostics = new DiagnosticBag();
        var reader = new NodeReader(diagnostics);
        var root = reader.Map(YamlReader.ReadSingle(File.ReadAllText(file), file, diagnostics), "kubeconfig");
        if (diagnostics.HasErrors)
        {
            throw new KubeConfigException(diagnostics.Items[0].ToString());
        }

        if (root is null)
        {
            return;
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        CurrentContext ??= reader.String(root["current-context"], "current-context");
        Named(reader, root["clusters"], "cluster", file, (name, map) => _clusters.TryAdd(name, (map, dir)));
        Named(reader, root["users"], "user", file, (name, map) => _users.TryAdd(name, (map, dir)));
        Named(reader, root["contexts"], "context", file, (name, map) => _contexts.TryAdd(name, map));
        if (diagnostics.HasErrors)
        {
            throw new KubeConfigException(diagnostics.Items[0].ToString());
        }
    }

    private static void Named(NodeReader reader, ValueNode? node, string field, string file, Action<string, ValueMap> add)
    {
        if (node is not ValueList list)
        {
            return;
        }

        foreach (var item in list.Items)
        {
            var entry = reader.Map(item, $"{field} entry in {file}");
            var name = reader.String(entry?["name"], $"{field} name");
            if (name is not null && reader.Map(entry![field], field) is { } body)
            {
                add(name, body);
            }
        }
    }

    /// <summary>The connection of a context (the current one when null).</summary>
    public ClusterConnection Resolve(string? context = null)
    {
        var name = context ?? CurrentContext ?? throw new KubeConfigException("the kubeconfig has no current-context; name a context");
        if (!_contexts.TryGetValue(name, out var ctx))
        {
            throw new KubeConfigException($"context '{name}' is not in the kubeconfig (known: {string.Join(", ", _contexts.Keys.Order(StringComparer.Ordinal))})");
        }

        var clusterName = Text(ctx["cluster"]) ?? throw new KubeConfigException($"context '{name}' names no cluster");
        if (!_clusters.TryGetValue(clusterName, out var cluster))
        {
            throw new KubeConfigException($"context '{name}' names cluster '{clusterName}', which is not in the kubeconfig");
        }

        var server = Text(cluster.Map["server"]);
        if (server is null || !Uri.TryCreate(server, UriKind.Absolute, out var serverUri) || serverUri.Scheme is not ("http" or "https"))
        {
            throw new KubeConfigException($"cluster '{clusterName}' has no valid server URL ({server ?? "missing"})");
        }

        var userName = Text(ctx["user"]);
        var user = userName is not null && _users.TryGetValue(userName, out var u) ? u : ((ValueMap Map, string Dir)?)null;
        if (userName is not null && user is null)
        {
            throw new KubeConfigException($"context '{name}' names user '{userName}', which is not in the kubeconfig (known: {string.Join(", ", _users.Keys.Order(StringComparer.Ordinal))})");
        }

        Uri? proxy = null;
        if (Text(cluster.Map["proxy-url"]) is { } proxyText && (!Uri.TryCreate(proxyText, UriKind.Absolute, out proxy) || proxy.Scheme is not ("http" or "https" or "socks5")))
        {
            throw new KubeConfigException($"cluster '{clusterName}' has a proxy-url that is not an http, https or socks5 URL ({proxyText})");
        }

        return new ClusterConnection(
            serverUri,
            Bytes(cluster.Map, "certificate-authority", cluster.Dir),
            cluster.Map["insecure-skip-tls-verify"] is ValueScalar { Type: ScalarType.Bool } skip && skip.AsBool() == true,
            user is { } cu ? TextOrFile(cu.Map, "client-certificate", cu.Dir) : null,
            user is { } ck ? TextOrFile(ck.Map, "client-key", ck.Dir) : null,
            user is { } ct ? Text(ct.Map["token"]) : null,
            user is { } cf && Text(cf.Map["tokenFile"]) is { } tf ? Path.Combine(cf.Dir, tf) : null,
            user is { } un ? Text(un.Map["username"]) : null,
            user is { } pw ? Text(pw.Map["password"]) : null,
            Text(ctx["namespace"]),
            name,
            user is { } ex ? Exec(ex.Map, ex.Dir, userName!) : null,
            user is { } im ? Impersonating(im.Map) : null,
            Text(cluster.Map["tls-server-name"]),
            proxy)
        {
            UserName = userName ?? name,
        };
    }

    private static ExecPlugin? Exec(ValueMap user, string dir, string userName)
    {
        if (user["exec"] is not ValueMap exec)
        {
            return null;
        }

        var command = Text(exec["command"]) ?? throw new KubeConfigException($"user '{userName}': exec has no command");
        // As client-go: a relative path (not a bare name looked up in PATH) is relative to the kubeconfig's directory.
        if (command.Contains('/', StringComparison.Ordinal) && !Path.IsPathRooted(command))
        {
            command = Path.Combine(dir, command);
        }

        var apiVersion = Text(exec["apiVersion"]) ?? throw new KubeConfigException($"user '{userName}': exec has no apiVersion (client.authentication.k8s.io/v1)");
        if (apiVersion is not ("client.authentication.k8s.io/v1" or "client.authentication.k8s.io/v1beta1"))
        {
            throw new KubeConfigException($"user '{userName}': exec apiVersion {apiVersion} is not supported (client.authentication.k8s.io/v1 or v1beta1)");
        }

        var args = (exec["args"] as ValueList)?.Items.Select(Text).OfType<string>().ToList() ?? [];
        var env = (exec["env"] as ValueList)?.Items.OfType<ValueMap>()
            .Select(e => (Name: Text(e["name"]), Value: Text(e["value"]) ?? string.Empty))
            .Where(e => e.Name is not null)
            .Select(e => KeyValuePair.Create(e.Name!, e.Value))
            .ToList() ?? [];
        var interactive = Text(exec["interactiveMode"]) ?? "IfAvailable";
        return new ExecPlugin(
            command, args, env, apiVersion, Text(exec["installHint"]),
            exec["provideClusterInfo"] is ValueScalar { Type: ScalarType.Bool } info && info.AsBool() == true,
            interactive);
    }

    private static Impersonation? Impersonating(ValueMap user)
    {
        var who = Text(user["as"]);
        var groups = (user["as-groups"] as ValueList)?.Items.Select(Text).OfType<string>().ToList() ?? [];
        var uid = Text(user["as-uid"]);
        var extra = (user["as-user-extra"] as ValueMap)?.Entries
            .SelectMany(e => e.Value is ValueList values ? values.Items.Select(Text).OfType<string>().Select(v => KeyValuePair.Create(e.Key, v)) : [])
            .ToList() ?? [];
        return who is null && groups.Count == 0 && uid is null && extra.Count == 0 ? null : new Impersonation(who, groups, uid, extra);
    }

    private static string? Text(ValueNode? node) => node is ValueScalar { IsNull: false } s ? s.Text : null;

    private static byte[]? Bytes(ValueMap map, string field, string dir)
    {
        if (Text(map[field + "-data"]) is { } data)
        {
            return Convert.FromBase64String(data);
        }

        return Text(map[field]) is { } path ? File.ReadAllBytes(Path.Combine(dir, path)) : null;
    }

    private static string? TextOrFile(ValueMap map, string field, string dir) =>
        Bytes(map, field, dir) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : null;
}
