using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Environments;

/// <summary>What a backend is: which values it writes and which of its fields name endpoints.</summary>
public enum BackendKind
{
    /// <summary>The memcached pool behind mcrouter: <c>servers</c> (per datacenter) and <c>route-prefix</c>.</summary>
    Memcached,

    /// <summary>The datacenter-local redis: <c>server</c> (per datacenter), given to PHP as WMF_DATACENTER_LOCAL_REDIS.</summary>
    Redis,

    /// <summary>A service-mesh upstream the TLS proxy offers on localhost: <c>port</c> and <c>upstream</c>.</summary>
    Mesh,

    /// <summary>The logging brokers: <c>brokers</c> (per datacenter) and <c>topic</c> (with <c>{namespace}</c>).</summary>
    Kafka,

    /// <summary>The udp2log relay: <c>address</c> (per datacenter).</summary>
    Udp2Log,

    /// <summary>The outgoing mail relay: <c>relay</c>.</summary>
    Mail,

    /// <summary>Database hosts (<c>hosts</c>, per datacenter): named in the private settings, so only scanned for.</summary>
    Database,
}

/// <summary>
/// A named endpoint MediaWiki pods talk to, as declared in the backends file. A field given as a mapping keyed by
/// datacenter holds one value per datacenter; otherwise it holds the value of every datacenter. Every value keeps the
/// file and line that declared it.
/// </summary>
public sealed record Backend(string Name, BackendKind Kind, ValueMap Fields)
{
    /// <summary>The fields of each kind: which are required, and which name endpoints.</summary>
    internal static readonly IReadOnlyDictionary<BackendKind, (string[] Required, string[] Optional)> KindFields = new Dictionary<BackendKind, (string[], string[])>
    {
        [BackendKind.Memcached] = (["servers", "route-prefix"], []),
        [BackendKind.Redis] = (["server"], []),
        [BackendKind.Mesh] = (["port", "upstream"], []),
        [BackendKind.Kafka] = (["brokers", "topic"], []),
        [BackendKind.Udp2Log] = (["address"], []),
        [BackendKind.Mail] = (["relay"], []),
        [BackendKind.Database] = (["hosts"], []),
    };

    /// <summary>The name of a kind as written in the backends file.</summary>
    public static string KindName(BackendKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>A field's value in a datacenter (the per-datacenter entry when the field is keyed by datacenter), or null.</summary>
    public ValueNode? Field(string key, string dc, IReadOnlyCollection<string> datacenters)
    {
        var node = Fields[key];
        return node is ValueMap perDc && perDc.Entries.Count > 0 && perDc.Entries.All(e => datacenters.Contains(e.Key)) ? perDc[dc] : node;
    }

    /// <summary>Every endpoint the backend names in any datacenter (host names, addresses, prefixes, topics), with where each is declared.</summary>
    public IEnumerable<(string Text, SourceLocation Location)> Endpoints(IReadOnlyCollection<string> datacenters, IReadOnlyCollection<string> namespaces)
    {
        foreach (var (key, node) in Fields.Entries.Select(e => (e.Key, e.Value)))
        {
            if (key is "port" or "kind")
            {
                continue;
            }

            foreach (var scalar in Scalars(node))
            {
                foreach (var text in Expand(scalar.Text, datacenters, namespaces))
                {
                    yield return (text, scalar.Location);
                    if (HostOf(text) is { } host && host != text)
                    {
                        yield return (host, scalar.Location);
                    }
                }
            }
        }
    }

    private static IEnumerable<ValueScalar> Scalars(ValueNode node) => node switch
    {
        ValueScalar { IsNull: false, Text.Length: > 0 } scalar => [scalar],
        ValueList list => list.Items.SelectMany(Scalars),
        ValueMap map => map.Entries.SelectMany(e => Scalars(e.Value)),
        _ => [],
    };

    private static IEnumerable<string> Expand(string text, IReadOnlyCollection<string> datacenters, IReadOnlyCollection<string> namespaces)
    {
        var byDc = text.Contains("{dc}", StringComparison.Ordinal) ? datacenters.Select(dc => text.Replace("{dc}", dc, StringComparison.Ordinal)) : [text];
        return byDc.SelectMany(t => t.Contains("{namespace}", StringComparison.Ordinal) ? namespaces.Select(ns => t.Replace("{namespace}", ns, StringComparison.Ordinal)) : [t]).Distinct();
    }

    /// <summary>The host of <c>host:port</c> (an IPv4 address or a name); null for anything else.</summary>
    private static string? HostOf(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && int.TryParse(text.AsSpan(colon + 1), out _) ? text[..colon] : null;
    }
}

/// <summary>Where an environment gets one backend from.</summary>
public abstract record BackendSource
{
    /// <summary>Deployed into the environment itself (namespace <c>NAME--backends</c>), from the repo's manifests.</summary>
    public sealed record Own : BackendSource
    {
        /// <inheritdoc/>
        public override string ToString() => "own";
    }

    /// <summary>A named non-production set declared in the backends file.</summary>
    public sealed record Shared(string Set) : BackendSource
    {
        /// <inheritdoc/>
        public override string ToString() => "shared:" + Set;
    }

    /// <summary>Production's own backend, read-only; only where a class names it explicitly.</summary>
    public sealed record ProductionReadOnly : BackendSource
    {
        /// <inheritdoc/>
        public override string ToString() => "production-readonly";
    }

    /// <summary>Parses <c>own</c>, <c>shared:SET</c> or <c>production-readonly</c>; null for anything else.</summary>
    public static BackendSource? Parse(string text) => text switch
    {
        "own" => new Own(),
        "production-readonly" => new ProductionReadOnly(),
        _ when text.StartsWith("shared:", StringComparison.Ordinal) && text.Length > "shared:".Length => new Shared(text["shared:".Length..]),
        _ => null,
    };
}

/// <summary>
/// The backends of a farm (the file capstan.yaml's <c>backends:</c> names): production's, by name; named shared
/// non-production sets; and the directory of the manifests an environment deploys for a backend of its own
/// (<c>own/NAME/</c>). Production's values for every backend's keys are generated from here.
/// </summary>
public sealed record BackendCatalog(string File, IReadOnlyList<Backend> Production, IReadOnlyDictionary<string, IReadOnlyList<Backend>> Shared, string OwnDirectory)
{
    /// <summary>The namespace (within an environment) its own backends run in.</summary>
    public const string Namespace = "backends";

    /// <summary>The farm's datacenters: the keys of a per-datacenter value.</summary>
    public IReadOnlyList<string> Datacenters { get; init; } = [];

    /// <summary>The values production's backends generate for one release in one datacenter.</summary>
    public ValueMap ProductionValues(string dc, string ns) => BackendValues.Generate(Production, dc, ns, Datacenters);

    private static readonly string[] TopKeys = ["production", "shared", "own"];

    /// <summary>Reads the backends file; problems go to the reader's diagnostics with file and line.</summary>
    public static BackendCatalog? Read(NodeReader reader, IRepoFiles files, string path, SourceLocation declaredAt, IReadOnlyCollection<string> datacenters)
    {
        if (!files.FileExists(path))
        {
            reader.Diagnostics.Error(declaredAt, $"backends file '{path}' does not exist");
            return null;
        }

        var root = reader.Map(YamlReader.ReadSingle(files.ReadText(path), path, reader.Diagnostics), path, TopKeys);
        if (root is null)
        {
            return null;
        }

        var production = ReadSet(reader, root["production"], "production", datacenters);
        if (root["production"] is null)
        {
            reader.Missing(root, "production", path);
        }

        var kinds = production.GroupBy(b => b.Kind).Where(g => g.Key != BackendKind.Mesh && g.Key != BackendKind.Database && g.Count() > 1);
        foreach (var twice in kinds)
        {
            reader.Diagnostics.Error(twice.Last().Fields.Location, $"production has {twice.Count()} {Backend.KindName(twice.Key)} backends ({string.Join(", ", twice.Select(b => b.Name))}); a farm has one");
        }

        var shared = new Dictionary<string, IReadOnlyList<Backend>>(StringComparer.Ordinal);
        foreach (var entry in reader.Map(root["shared"], "shared")?.Entries ?? [])
        {
            var set = ReadSet(reader, entry.Value, $"shared.{entry.Key}", datacenters);
            foreach (var backend in set)
            {
                if (production.FirstOrDefault(p => p.Name == backend.Name) is not { } same)
                {
                    reader.Diagnostics.Error(backend.Fields.Location, $"shared.{entry.Key}.{backend.Name}: production has no backend '{backend.Name}' (a shared set replaces production's backends by name; known: {string.Join(", ", production.Select(p => p.Name))})");
                }
                else if (same.Kind != backend.Kind)
                {
                    reader.Diagnostics.Error(backend.Fields["kind"]!.Location, $"shared.{entry.Key}.{backend.Name} is a {Backend.KindName(backend.Kind)} backend, but production's {backend.Name} is {Backend.KindName(same.Kind)}");
                }
            }

            shared[entry.Key] = set;
        }

        var own = reader.String(root["own"], "own") ?? "environments/backends";
        return new BackendCatalog(path, production, shared, own.TrimEnd('/')) { Datacenters = [.. datacenters] };
    }

    private static List<Backend> ReadSet(NodeReader reader, ValueNode? node, string what, IReadOnlyCollection<string> datacenters)
    {
        var result = new List<Backend>();
        foreach (var entry in reader.Map(node, what)?.Entries ?? [])
        {
            var where = $"{what}.{entry.Key}";
            if (KubeNamesCheck(entry.Key) is { } why)
            {
                reader.Diagnostics.Error(entry.KeyLocation, $"backend name '{entry.Key}' {why}");
                continue;
            }

            var choices = Enum.GetValues<BackendKind>().Select(k => (Backend.KindName(k), k)).ToList();
            if (reader.Map(entry.Value, where) is not { } fields || reader.Enum(fields["kind"], $"{where}.kind", choices) is not { } kind)
            {
                if (entry.Value is ValueMap map && map["kind"] is null)
                {
                    reader.Missing(map, "kind", where);
                }

                continue;
            }

            var (required, optional) = Backend.KindFields[kind];
            reader.Map(fields, where, [.. required, .. optional, "kind"]);
            foreach (var key in required.Where(k => fields[k] is null))
            {
                reader.Missing(fields, key, where);
            }

            if (fields["port"] is { } port)
            {
                reader.Int(port, $"{where}.port", 1, 65535);
            }

            if (fields.Entries.Any(e => e.Value is ValueMap perDc && perDc.Entries.Any(d => !datacenters.Contains(d.Key))))
            {
                var bad = fields.Entries.First(e => e.Value is ValueMap perDc && perDc.Entries.Any(d => !datacenters.Contains(d.Key)));
                reader.Diagnostics.Error(bad.Value.Location, $"{where}.{bad.Key}: a per-datacenter value is keyed by datacenter (known: {string.Join(", ", datacenters)})");
            }

            result.Add(new Backend(entry.Key, kind, fields));
        }

        return result;
    }

    private static string? KubeNamesCheck(string name) => Kubernetes.KubeNames.CheckDnsLabel(name);

    /// <summary>Production's backend of a name, or null.</summary>
    public Backend? Find(string name) => Production.FirstOrDefault(b => b.Name == name);
}
