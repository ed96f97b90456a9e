using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>Reads one server-group file (<c>groups/mw-web.yaml</c>): traits and releases.</summary>
internal static class GroupFileReader
{
    private static readonly string[] GroupKeys = ["namespace", "traits", "tls-port", "releases"];
    private static readonly string[] TraitKeys = ["serving", "periodic", "availability"];
    private static readonly string[] ReleaseKeys = ["kind", "stage", "needs", "replicas", "canary", "cronjobs", "path", "datacenters"];
    private static readonly string[] CanaryKeys = ["of", "percent"];
    private static readonly string[] CronKeys = ["name", "schedule", "command", "suspended", "description"];

    private static readonly (string, ServingKind)[] ServingWords = [("web", ServingKind.Web), ("async", ServingKind.Async), ("cli", ServingKind.Cli)];
    private static readonly (string, Availability)[] AvailabilityWords = [("active-active", Availability.ActiveActive), ("active-passive", Availability.ActivePassive)];

    internal static readonly (string, ReleaseKind)[] KindWords =
    [
        ("mediawiki", ReleaseKind.MediaWiki),
        ("statsd-exporter", ReleaseKind.StatsdExporter),
        ("mediawiki-common", ReleaseKind.MediaWikiCommon),
        ("manifests", ReleaseKind.Manifests),
    ];

    internal static readonly (string, Stage)[] StageWords = [("testservers", Stage.Testservers), ("canaries", Stage.Canaries), ("production", Stage.Production)];

    // The longest container suffix; the release name must leave room for it within 63 characters.
    private const string LongestContainerSuffix = "-php-fpm-exporter";

    public static ServerGroup? Read(IRepoFiles files, string file, IReadOnlyList<string> dcNames, NodeReader reader)
    {
        var diagnostics = reader.Diagnostics;
        var stem = Path.GetFileNameWithoutExtension(file);
        var root = reader.Map(YamlReader.ReadSingle(files.ReadText(file), file, diagnostics), file, GroupKeys);
        if (root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Error(SourceLocation.OfFile(file), "server group file is empty");
            }

            return null;
        }

        var ns = reader.String(root["namespace"], "namespace") ?? stem;
        if (KubeNames.CheckDnsLabel(ns) is { } nsWhy)
        {
            diagnostics.Error(root["namespace"]?.Location ?? SourceLocation.OfFile(file), $"namespace '{ns}' {nsWhy}");
            return null;
        }

        var traits = ReadTraits(reader, root["traits"], GroupTraits.FromName(ns));
        var tlsPort = reader.Int(root["tls-port"], "tls-port", 1, 65535);
        if (traits.Serving != ServingKind.Cli && root["tls-port"] is null)
        {
            reader.Missing(root, "tls-port", $"server group '{ns}' ({traits.Serving.ToString().ToLowerInvariant()} groups terminate TLS)");
        }

        var releasesMap = reader.Map(root["releases"], "releases");
        if (releasesMap is null)
        {
            if (root["releases"] is null)
            {
                reader.Missing(root, "releases", $"server group '{ns}'");
            }

            return null;
        }

        var releases = new List<ReleaseSpec>();
        foreach (var entry in releasesMap.Entries)
        {
            if (ReadRelease(reader, ns, traits, entry, dcNames) is { } release)
            {
                releases.Add(release);
            }
        }

        return new ServerGroup(ns, traits, releases, file, tlsPort, root["tls-port"]?.Location ?? SourceLocation.OfFile(file));
    }

    private static GroupTraits ReadTraits(NodeReader reader, ValueNode? node, GroupTraits derived)
    {
        var map = reader.Map(node, "traits", TraitKeys);
        if (map is null)
        {
            return derived;
        }

        return new GroupTraits(
            reader.Enum(map["serving"], "traits.serving", ServingWords) ?? derived.Serving,
            reader.Bool(map["periodic"], "traits.periodic") ?? derived.Periodic,
            reader.Enum(map["availability"], "traits.availability", AvailabilityWords) ?? derived.Availability);
    }

    private static ReleaseSpec? ReadRelease(NodeReader reader, string ns, GroupTraits traits, MapEntry entry, IReadOnlyList<string> dcNames)
    {
        var diagnostics = reader.Diagnostics;
        var name = entry.Key;
        var what = $"release '{ns}/{name}'";
        if (KubeNames.CheckDnsLabel(name) is { } why)
        {
            diagnostics.Error(entry.KeyLocation, $"release name '{name}' {why}");
            return null;
        }

        var map = entry.Value is ValueScalar { IsNull: true }
            ? new ValueMap([], entry.Value.Location)
            : reader.Map(entry.Value, what, ReleaseKeys);
        if (map is null)
        {
            return null;
        }

        var readKind = reader.Enum(map["kind"], $"{what}: kind", KindWords);

        // An unknown kind is reported above; checking the shape of a guessed kind would only add noise.
        var kindKnown = readKind is not null || map["kind"] is null;
        var kind = readKind ?? ReleaseKind.MediaWiki;
        if (kind == ReleaseKind.MediaWiki && ("mediawiki-" + name + LongestContainerSuffix).Length > KubeNames.MaxLabelLength)
        {
            diagnostics.Error(entry.KeyLocation,
                $"release name '{name}' is too long: container name 'mediawiki-{name}{LongestContainerSuffix}' would exceed {KubeNames.MaxLabelLength} characters");
        }

        var defaultStage = kind == ReleaseKind.MediaWiki ? Stage.Production : Stage.Testservers;
        var stage = reader.Enum(map["stage"], $"{what}: stage", StageWords) ?? defaultStage;
        var needs = ReadNeeds(reader, ns, map["needs"], what);
        var datacenters = reader.StringList(map["datacenters"], $"{what}: datacenters");
        foreach (var dc in datacenters ?? [])
        {
            if (!dcNames.Contains(dc))
            {
                diagnostics.Error(map["datacenters"]!.Location, $"{what}: unknown datacenter '{dc}' (known: {string.Join(", ", dcNames)})");
            }
        }

        var canary = ReadCanary(reader, map["canary"], what);
        var replicas = ReadReplicas(reader, map["replicas"], what, datacenters ?? dcNames, dcNames);
        var cronjobs = ReadCronJobs(reader, map["cronjobs"], what);
        var path = reader.String(map["path"], $"{what}: path");

        if (kind != ReleaseKind.MediaWiki)
        {
            foreach (var key in new[] { "replicas", "canary", "cronjobs" })
            {
                if (map.TryGet(key, out var e))
                {
                    diagnostics.Error(e.KeyLocation, $"{what}: '{key}' applies only to mediawiki releases, not {KindWords.First(k => k.Item2 == kind).Item1}");
                }
            }
        }

        if (kind == ReleaseKind.Manifests && path is null && map["path"] is null)
        {
            reader.Missing(map, "path", what + " (kind manifests)");
        }
        else if (kind != ReleaseKind.Manifests && map.TryGet("path", out var pathEntry))
        {
            diagnostics.Error(pathEntry.KeyLocation, $"{what}: 'path' applies only to manifests releases");
        }

        if (kind == ReleaseKind.MediaWiki && kindKnown)
        {
            CheckMediaWikiShape(reader, map, traits, what, replicas, canary, cronjobs);
        }

        return new ReleaseSpec(name, kind, stage, needs, replicas, canary, cronjobs, path, datacenters, entry.KeyLocation);
    }

    private static void CheckMediaWikiShape(
        NodeReader reader, ValueMap map, GroupTraits traits, string what, ReplicaCounts? replicas, CanarySpec? canary, IReadOnlyList<MaintenanceJobSpec> cronjobs)
    {
        var diagnostics = reader.Diagnostics;
        if (canary is not null && map.TryGet("replicas", out var r))
        {
            diagnostics.Error(r.KeyLocation, $"{what}: a canary's replicas follow from its main release; remove 'replicas' or 'canary'");
        }

        if (traits.Serving == ServingKind.Cli)
        {
            if (map.TryGet("replicas", out var cr))
            {
                diagnostics.Error(cr.KeyLocation, $"{what}: cli groups run Jobs and CronJobs, not replicas");
            }

            if (map.TryGet("canary", out var cc))
            {
                diagnostics.Error(cc.KeyLocation, $"{what}: cli groups have no canaries");
            }
        }
        else if (replicas is null && canary is null && map["replicas"] is null)
        {
            reader.Missing(map, "replicas", what);
        }

        if (!traits.Periodic && map.TryGet("cronjobs", out var cj))
        {
            diagnostics.Error(cj.KeyLocation, $"{what}: cronjobs need a periodic group (a name containing 'cron', or traits.periodic: true)");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var job in cronjobs)
        {
            if (!seen.Add(job.Name))
            {
                diagnostics.Error(job.Location, $"{what}: duplicate cron job '{job.Name}'");
            }
        }
    }

    private static List<ReleaseRef> ReadNeeds(NodeReader reader, string ns, ValueNode? node, string what)
    {
        var result = new List<ReleaseRef>();
        foreach (var text in reader.StringList(node, $"{what}: needs") ?? [])
        {
            var parts = text.Split('/');
            if (parts.Length > 2 || parts.Any(p => p.Length == 0))
            {
                reader.Diagnostics.Error(node!.Location, $"{what}: needs '{text}' must be a release name or namespace/release");
                continue;
            }

            result.Add(parts.Length == 2 ? new ReleaseRef(parts[0], parts[1]) : new ReleaseRef(ns, parts[0]));
        }

        return result;
    }

    private static CanarySpec? ReadCanary(NodeReader reader, ValueNode? node, string what)
    {
        var map = reader.Map(node, $"{what}: canary", CanaryKeys);
        if (map is null)
        {
            return null;
        }

        var of = reader.String(map["of"], $"{what}: canary.of");
        if (map["of"] is null)
        {
            reader.Missing(map, "of", $"{what}: canary");
        }

        var percent = reader.Decimal(map["percent"], $"{what}: canary.percent", 0.01m, 100m) ?? 3m;
        return of is null ? null : new CanarySpec(of, percent);
    }

    private static ReplicaCounts? ReadReplicas(NodeReader reader, ValueNode? node, string what, IReadOnlyList<string> releaseDcs, IReadOnlyList<string> dcNames)
    {
        if (node is null)
        {
            return null;
        }

        if (node is ValueScalar)
        {
            var n = reader.Int(node, $"{what}: replicas", 0, 10_000);
            return n is null ? null : new ReplicaCounts(releaseDcs.ToDictionary(dc => dc, _ => n.Value, StringComparer.Ordinal));
        }

        var map = reader.Map(node, $"{what}: replicas", dcNames);
        if (map is null)
        {
            return null;
        }

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in map.Entries.Where(e => dcNames.Contains(e.Key)))
        {
            if (reader.Int(entry.Value, $"{what}: replicas.{entry.Key}", 0, 10_000) is { } n)
            {
                counts[entry.Key] = n;
            }
        }

        foreach (var dc in releaseDcs.Where(dc => dcNames.Contains(dc) && !map.TryGet(dc, out _)))
        {
            reader.Diagnostics.Error(map.Location, $"{what}: replicas has no count for datacenter '{dc}'");
        }

        return new ReplicaCounts(counts);
    }

    private static List<MaintenanceJobSpec> ReadCronJobs(NodeReader reader, ValueNode? node, string what)
    {
        var result = new List<MaintenanceJobSpec>();
        if (node is null)
        {
            return result;
        }

        if (node is not ValueList list)
        {
            reader.Diagnostics.Error(node.Location, $"{what}: cronjobs must be a list, not {node.Describe()}");
            return result;
        }

        foreach (var item in list.Items)
        {
            var map = reader.Map(item, $"{what}: cron job", CronKeys);
            if (map is null)
            {
                continue;
            }

            var name = reader.String(map["name"], "cron job name");
            var schedule = reader.String(map["schedule"], "cron job schedule");
            var command = reader.ScalarList(map["command"], "cron job command");
            var suspended = reader.Bool(map["suspended"], "cron job suspended") ?? false;
            var description = reader.String(map["description"], "cron job description");
            foreach (var key in new[] { "name", "schedule", "command" }.Where(k => map[k] is null))
            {
                reader.Missing(map, key, $"{what}: cron job");
            }

            if (name is not null && KubeNames.CheckDnsLabel(name, KubeNames.MaxCronJobNameLength) is { } why)
            {
                reader.Diagnostics.Error(map["name"]!.Location, $"cron job name '{name}' {why}");
                name = null;
            }

            if (schedule is not null && CronSchedule.Check(schedule) is { } badSchedule)
            {
                reader.Diagnostics.Error(map["schedule"]!.Location, $"cron job schedule \"{schedule}\": {badSchedule}");
                schedule = null;
            }

            if (command is { Count: 0 })
            {
                reader.Diagnostics.Error(map["command"]!.Location, "cron job command must not be empty");
                command = null;
            }

            if (name is not null && schedule is not null && command is not null)
            {
                result.Add(new MaintenanceJobSpec(name, schedule, command, suspended, description, map.Location));
            }
        }

        return result;
    }
}
