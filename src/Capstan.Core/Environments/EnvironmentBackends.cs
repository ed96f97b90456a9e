using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Environments;

/// <summary>
/// How the environments of a purpose class get their backends: a default source, and sources for single backends or
/// kinds (<c>mesh: shared:staging</c>). Production's own backends (<c>production-readonly</c>) only where a class names
/// them one by one.
/// </summary>
public sealed record BackendProfile(BackendSource Default, IReadOnlyDictionary<string, BackendSource> Overrides)
{
    /// <summary>Every backend the environment's own.</summary>
    public static BackendProfile AllOwn { get; } = new(new BackendSource.Own(), new Dictionary<string, BackendSource>());

    /// <summary>The source of one backend: its name's entry, else its kind's, else the default.</summary>
    public BackendSource For(Backend backend) =>
        Overrides.GetValueOrDefault(backend.Name) ?? Overrides.GetValueOrDefault(Backend.KindName(backend.Kind)) ?? Default;

    /// <summary>
    /// Reads a profile: a source for everything (<c>own</c>, <c>shared:SET</c>), or a mapping with <c>default</c> and
    /// entries per backend or kind. <c>production-readonly</c> is refused unless <paramref name="allowProduction"/>, and
    /// never as the default.
    /// </summary>
    public static BackendProfile? Read(NodeReader reader, ValueNode? node, string what, BackendProfile inherited, bool allowProduction)
    {
        if (node is null)
        {
            return null;
        }

        BackendSource? Source(ValueNode value, string where, bool isDefault)
        {
            if (reader.String(value, where) is not { } text)
            {
                return null;
            }

            var source = BackendSource.Parse(text);
            if (source is null)
            {
                reader.Diagnostics.Error(value.Location, $"{where} must be own, shared:SET or production-readonly, not \"{text}\"");
            }
            else if (source is BackendSource.ProductionReadOnly && (isDefault || !allowProduction))
            {
                reader.Diagnostics.Error(value.Location, $"{where}: production-readonly is allowed only for a named backend of a class (test-environments.classes.CLASS.backends.NAME), never as a default");
                return null;
            }

            return source;
        }

        if (node is ValueScalar)
        {
            return Source(node, what, isDefault: true) is { } all ? new BackendProfile(all, new Dictionary<string, BackendSource>()) : null;
        }

        var map = reader.Map(node, what);
        var overrides = new Dictionary<string, BackendSource>(inherited.Overrides, StringComparer.Ordinal);
        var @default = inherited.Default;
        foreach (var entry in map?.Entries ?? [])
        {
            if (Source(entry.Value, $"{what}.{entry.Key}", entry.Key == "default") is { } source)
            {
                if (entry.Key == "default")
                {
                    @default = source;
                }
                else
                {
                    overrides[entry.Key] = source;
                }
            }
        }

        return new BackendProfile(@default, overrides);
    }

    /// <summary>Checks the profile against the farm's backends: every name it gives exists, and every shared set too.</summary>
    public IEnumerable<string> Problems(BackendCatalog catalog)
    {
        var kinds = Enum.GetValues<BackendKind>().Select(Backend.KindName).ToHashSet(StringComparer.Ordinal);
        foreach (var name in Overrides.Keys.Where(k => !kinds.Contains(k) && catalog.Find(k) is null))
        {
            yield return $"backend '{name}' is not one of production's (known: {string.Join(", ", catalog.Production.Select(b => b.Name))}; or a kind: {string.Join(", ", kinds)})";
        }

        foreach (var set in Overrides.Values.Append(Default).OfType<BackendSource.Shared>().Select(s => s.Set).Distinct().Where(s => !catalog.Shared.ContainsKey(s)))
        {
            yield return $"there is no shared backend set '{set}' (known: {(catalog.Shared.Count == 0 ? "none" : string.Join(", ", catalog.Shared.Keys))})";
        }
    }
}

/// <summary>One backend of an environment: production's, where the environment gets it from, and what it then talks to.</summary>
public sealed record EnvironmentBackend(Backend Production, BackendSource Source, Backend Effective)
{
    /// <summary>True when the environment deploys a release for it (an own backend other than logs, which go to stdout).</summary>
    public bool Deployed => Source is BackendSource.Own && Production.Kind is not (BackendKind.Kafka or BackendKind.Udp2Log);
}

/// <summary>
/// The backends of one environment: each of production's, resolved through its class's profile. An own backend
/// points at a Service in <c>NAME--backends</c>; a shared one at the shared set's; only an explicit
/// production-readonly one at production's.
/// </summary>
public sealed record EnvironmentBackends(string Environment, BackendCatalog Catalog, IReadOnlyList<EnvironmentBackend> Items)
{
    /// <summary>The environment's namespace of its own backends.</summary>
    public string Namespace => EnvironmentNames.Namespace(Environment, BackendCatalog.Namespace);

    /// <summary>The backends it shares with production.</summary>
    public IEnumerable<EnvironmentBackend> FromProduction => Items.Where(i => i.Source is BackendSource.ProductionReadOnly);

    /// <summary>
    /// Resolves every production backend for an environment. A shared set that lacks a backend leaves that backend
    /// the environment's own, unless the profile named the backend itself (then it is an error).
    /// </summary>
    public static EnvironmentBackends Resolve(BackendCatalog catalog, BackendProfile profile, string environment)
    {
        var items = new List<EnvironmentBackend>();
        var ns = EnvironmentNames.Namespace(environment, BackendCatalog.Namespace);
        foreach (var backend in catalog.Production)
        {
            var source = profile.For(backend);
            Backend effective;
            switch (source)
            {
                case BackendSource.Shared shared when catalog.Shared[shared.Set].FirstOrDefault(b => b.Name == backend.Name) is { } found:
                    effective = found;
                    break;
                case BackendSource.Shared shared when profile.Overrides.ContainsKey(backend.Name):
                    throw new UserInputException($"the backends of environment {environment} name shared:{shared.Set} for {backend.Name}, but {catalog.File} declares no {backend.Name} in shared.{shared.Set}");
                case BackendSource.ProductionReadOnly:
                    effective = backend;
                    break;
                default:
                    source = new BackendSource.Own();
                    effective = Own(catalog, backend, ns);
                    break;
            }

            items.Add(new EnvironmentBackend(backend, source, effective));
        }

        return new EnvironmentBackends(environment, catalog, items);
    }

    /// <summary>An own backend: the Service of its name in the environment's backends namespace; logs to stdout.</summary>
    private static Backend Own(BackendCatalog catalog, Backend production, string ns)
    {
        var at = SourceLocation.OfFile($"{catalog.OwnDirectory}/{production.Name}/");
        var host = $"{production.Name}.{ns}.svc.cluster.local";
        ValueNode Text(string text) => new ValueScalar(text, isPlain: false, at);
        ValueNode List(params string[] items) => new ValueList([.. items.Select(Text)], at);
        var fields = production.Kind switch
        {
            BackendKind.Memcached => new[] { ("servers", List(host + ":11211")), ("route-prefix", Text($"/{ns}/mw")) },
            BackendKind.Redis => [("server", Text(host + ":6379"))],
            BackendKind.Mesh => [("port", production.Fields["port"]!), ("upstream", Text($"{host}:{UpstreamPort(production)}"))],
            BackendKind.Kafka => [("brokers", List()), ("topic", Text(string.Empty))],
            BackendKind.Udp2Log => [("address", Text(string.Empty))],
            BackendKind.Mail => [("relay", Text(host))],
            _ => [("hosts", List(host))],
        };
        return new Backend(production.Name, production.Kind, new ValueMap([.. fields.Select(f => new MapEntry(f.Item1, at, f.Item2))], at));
    }

    private static string UpstreamPort(Backend mesh)
    {
        var upstream = (mesh.Fields["upstream"] as ValueScalar)?.Text ?? string.Empty;
        var colon = upstream.LastIndexOf(':');
        return colon > 0 ? upstream[(colon + 1)..] : "443";
    }

    /// <summary>Every endpoint of production the environment must not reach: those of the backends it does not share with production.</summary>
    public IEnumerable<(string Text, SourceLocation Location, string Backend)> ForbiddenEndpoints(IReadOnlyCollection<string> datacenters, IReadOnlyCollection<string> namespaces) =>
        Items.Where(i => i.Source is not BackendSource.ProductionReadOnly)
            .SelectMany(i => i.Production.Endpoints(datacenters, namespaces).Select(e => (e.Text, e.Location, i.Production.Name)));
}

/// <summary>
/// The values a set of backends generates: the lowest layer of every release's values, below the infra files, each
/// value located in the backends file (or, for an environment's own backend, its manifests directory).
/// </summary>
public static class BackendValues
{
    /// <summary>The generated values of one release in one datacenter.</summary>
    public static ValueMap Generate(IEnumerable<Backend> backends, string dc, string ns, IReadOnlyCollection<string> datacenters)
    {
        var root = new Dictionary<string, Dictionary<string, object>>(StringComparer.Ordinal);
        var at = SourceLocation.OfFile("(backends)");
        void Set(string top, string key, ValueNode? value)
        {
            if (value is not null)
            {
                (root.TryGetValue(top, out var map) ? map : root[top] = new Dictionary<string, object>(StringComparer.Ordinal))[key] = value;
            }
        }

        ValueNode? Expanded(ValueNode? node) => node is ValueScalar scalar
            ? new ValueScalar(scalar.Text.Replace("{dc}", dc, StringComparison.Ordinal).Replace("{namespace}", ns, StringComparison.Ordinal), isPlain: false, scalar.Location)
            : node;

        var listeners = new List<ValueNode>();
        foreach (var backend in backends)
        {
            ValueNode? Field(string key) => Expanded(backend.Field(key, dc, datacenters));
            switch (backend.Kind)
            {
                case BackendKind.Memcached:
                    Set("mcrouter", "route-prefix", Field("route-prefix"));
                    if (Field("servers") is { } servers)
                    {
                        Set("mcrouter", "pools", new ValueMap([new MapEntry($"{dc}-servers", servers.Location, servers)], servers.Location));
                    }

                    break;
                case BackendKind.Redis when Field("server") is { } server:
                    Set("php", "env", new ValueMap([new MapEntry("WMF_DATACENTER_LOCAL_REDIS", server.Location, server)], server.Location));
                    break;
                case BackendKind.Mesh:
                    listeners.Add(new ValueMap(
                        [
                            new MapEntry("name", backend.Fields.Location, new ValueScalar(backend.Name, isPlain: false, backend.Fields.Location)),
                            new MapEntry("port", backend.Fields.Location, backend.Fields["port"]!),
                            new MapEntry("upstream", backend.Fields.Location, Field("upstream")!),
                        ],
                        backend.Fields.Location));
                    break;
                case BackendKind.Kafka:
                    Set("logging", "kafka-brokers", Field("brokers"));
                    Set("logging", "topic", Field("topic"));
                    break;
                case BackendKind.Udp2Log:
                    Set("logging", "udp2log", Field("address"));
                    break;
                case BackendKind.Mail:
                    Set("mail", "smarthost", Field("relay"));
                    break;
            }
        }

        if (listeners.Count > 0)
        {
            Set("mesh", "listeners", new ValueList(listeners, listeners[0].Location));
        }

        return new ValueMap(
            [.. root.Select(top => new MapEntry(top.Key, at, new ValueMap([.. top.Value.Select(kv => new MapEntry(kv.Key, ((ValueNode)kv.Value).Location, (ValueNode)kv.Value))], at)))],
            at);
    }
}
