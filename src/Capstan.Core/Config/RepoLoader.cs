using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// Loads and validates a deployment repo: <c>capstan.yaml</c> and one file per server group. Every problem is
/// reported with its file, line and column; a repo with errors never produces a model.
/// </summary>
public static class RepoLoader
{
    /// <summary>The repo's main file.</summary>
    public const string MainFile = "capstan.yaml";

    private static readonly string[] TopKeys = ["project", "datacenters", "state", "state-seed", "registry", "groups", "values", "environments", "image", "test-environments", "pre-pull", "backends", "subsets", "prometheus", "gates", "notify", "train"];
    private static readonly string[] DatacenterKeys = ["cluster"];
    private static readonly string[] SubsetKeys = ["datacenters", "releases"];

    /// <summary>Loads the repo; throws <see cref="RepoValidationException"/> when it has errors.</summary>
    public static (FarmModel Model, IReadOnlyList<Diagnostic> Warnings) Load(IRepoFiles files)
    {
        var diagnostics = new DiagnosticBag();
        var model = TryLoad(files, diagnostics);
        if (model is null || diagnostics.HasErrors)
        {
            throw new RepoValidationException([.. diagnostics.Sorted().Where(d => d.Severity == Severity.Error)]);
        }

        return (model, [.. diagnostics.Sorted()]);
    }

    /// <summary>Loads the repo, recording findings; returns null when it could not be read at all.</summary>
    public static FarmModel? TryLoad(IRepoFiles files, DiagnosticBag diagnostics)
    {
        if (!files.FileExists(MainFile))
        {
            diagnostics.Error(SourceLocation.OfFile(MainFile), $"no {MainFile} in {files.Root}: not a Capstan deployment repo (use --repo DIR or set CAPSTAN_REPO)");
            return null;
        }

        var reader = new NodeReader(diagnostics);
        var root = reader.Map(YamlReader.ReadSingle(files.ReadText(MainFile), MainFile, diagnostics), MainFile, TopKeys);
        if (root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Error(SourceLocation.OfFile(MainFile), $"{MainFile} is empty");
            }

            return null;
        }

        var project = reader.String(root["project"], "project");
        if (project is null && root["project"] is null)
        {
            reader.Missing(root, "project", MainFile);
        }
        else if (project is not null && KubeNames.CheckDnsLabel(project) is { } why)
        {
            diagnostics.Error(root["project"]!.Location, $"project name '{project}' {why}");
        }

        var datacenters = ReadDatacenters(reader, root);
        var dcNames = datacenters.Select(d => d.Name).ToList();
        var state = reader.String(root["state"], "state") ?? "file://.capstan/state";
        var stateSeed = reader.String(root["state-seed"], "state-seed");
        if (stateSeed is not null && !files.FileExists(stateSeed))
        {
            diagnostics.Error(root["state-seed"]!.Location, $"state-seed file '{stateSeed}' does not exist");
        }
        var registry = reader.String(root["registry"], "registry") ?? "oci-layout://.capstan/images";
        var layout = ReadValuesLayout(reader, root["values"]);
        var groupPattern = reader.String(root["groups"], "groups") ?? "groups/*.yaml";

        var groups = new List<ServerGroup>();
        var groupFiles = ListPattern(files, groupPattern);
        if (groupFiles.Count == 0)
        {
            diagnostics.Error(root["groups"]?.Location ?? SourceLocation.OfFile(MainFile), $"no server group files match '{groupPattern}'");
        }

        var seenNamespaces = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in groupFiles)
        {
            var group = GroupFileReader.Read(files, file, dcNames, reader);
            if (group is null)
            {
                continue;
            }

            if (seenNamespaces.TryGetValue(group.Namespace, out var other))
            {
                diagnostics.Error(SourceLocation.OfFile(file), $"server group '{group.Namespace}' is already defined in {other}");
                continue;
            }

            seenNamespaces[group.Namespace] = file;
            groups.Add(group);
        }

        var subsets = ReadSubsets(reader, root, dcNames);
        var image = ImageBuildSpec.Read(reader, root["image"]);
        var backends = reader.String(root["backends"], "backends") is { } backendsFile
            ? Environments.BackendCatalog.Read(reader, files, backendsFile, root["backends"]!.Location, dcNames)
            : null;
        var policy = Environments.EnvironmentPolicy.Read(reader, root["test-environments"]);
        if (backends is not null)
        {
            policy.CheckBackends(reader, root["test-environments"], backends);
        }

        var model = new FarmModel(project ?? "invalid", files.Root, datacenters, state, stateSeed, registry, layout, groups, subsets)
        {
            Image = image,
            EnvironmentPolicy = policy,
            PrePull = PrePullSettings.Read(reader, root["pre-pull"]),
            Backends = backends,
            Gates = GateSettings.Read(reader, root["prometheus"], root["gates"]),
            Notify = NotifySettings.Read(reader, root["notify"]),
            Train = Train.TrainSettings.Read(reader, root["train"]),
        };
        FarmValidator.Validate(model, files, diagnostics);
        return model;
    }

    /// <summary>Files matching a path whose last part may hold '*' wildcards.</summary>
    public static IReadOnlyList<string> ListPattern(IRepoFiles files, string pattern)
    {
        var slash = pattern.LastIndexOf('/');
        var directory = slash < 0 ? string.Empty : pattern[..slash];
        var name = slash < 0 ? pattern : pattern[(slash + 1)..];
        if (!name.Contains('*', StringComparison.Ordinal))
        {
            return files.FileExists(pattern) ? [pattern] : [];
        }

        return files.ListFiles(directory, name);
    }

    private static List<DatacenterSpec> ReadDatacenters(NodeReader reader, ValueMap root)
    {
        var result = new List<DatacenterSpec>();
        var map = reader.Map(root["datacenters"], "datacenters");
        if (map is null)
        {
            if (root["datacenters"] is null)
            {
                reader.Missing(root, "datacenters", MainFile);
            }

            return result;
        }

        if (map.Entries.Count == 0)
        {
            reader.Diagnostics.Error(map.Location, "datacenters must name at least one datacenter");
        }

        foreach (var entry in map.Entries)
        {
            if (KubeNames.CheckDnsLabel(entry.Key) is { } why)
            {
                reader.Diagnostics.Error(entry.KeyLocation, $"datacenter name '{entry.Key}' {why}");
                continue;
            }

            var dc = reader.Map(entry.Value, $"datacenter '{entry.Key}'", DatacenterKeys);
            var cluster = dc is null ? null : reader.String(dc["cluster"], $"datacenters.{entry.Key}.cluster");
            if (dc is not null && dc["cluster"] is null)
            {
                reader.Missing(dc, "cluster", $"datacenter '{entry.Key}'");
            }

            result.Add(new DatacenterSpec(entry.Key, cluster ?? $"local://{entry.Key}", entry.KeyLocation));
        }

        return result;
    }

    private static ValuesLayout ReadValuesLayout(NodeReader reader, ValueNode? node)
    {
        var names = ValuesLayout.LayerNames.Select(l => l.Name).ToList();
        var map = reader.Map(node, "values", names);
        if (map is null)
        {
            return ValuesLayout.Default;
        }

        var templates = new Dictionary<ValuesLayer, IReadOnlyList<string>>(ValuesLayout.Default.Templates);
        foreach (var (name, layer) in ValuesLayout.LayerNames)
        {
            if (reader.StringList(map[name], $"values.{name}", allowSingle: true) is not { } paths)
            {
                continue;
            }

            foreach (var path in paths)
            {
                if (path.StartsWith('/') || path.Split('/').Contains(".."))
                {
                    reader.Diagnostics.Error(map[name]!.Location, $"values.{name}: path '{path}' must stay inside the repo (no leading '/', no '..')");
                }
            }

            templates[layer] = paths;
        }

        return new ValuesLayout(templates);
    }

    /// <summary>
    /// The release subsets (<c>subsets:</c>; the old spelling <c>environments:</c> is read with a warning that names
    /// the new one, since an environment is now a test environment).
    /// </summary>
    private static List<SubsetSpec> ReadSubsets(NodeReader reader, ValueMap root, List<string> dcNames)
    {
        var result = new List<SubsetSpec>();
        var key = "subsets";
        if (root["environments"] is { } old)
        {
            if (root["subsets"] is not null)
            {
                reader.Diagnostics.Error(root.Entries.First(e => e.Key == "environments").KeyLocation, "capstan.yaml has both subsets: and environments: (its old spelling); keep subsets: alone");
            }
            else
            {
                reader.Diagnostics.Warning(root.Entries.First(e => e.Key == "environments").KeyLocation, "environments: is the old spelling of subsets: (release subsets deployed with --subset); rename it: the old spelling is read for one more release");
                key = "environments";
            }
        }

        var map = reader.Map(root[key], key);
        if (map is null)
        {
            result.Add(new SubsetSpec("production", dcNames, null, SourceLocation.OfFile(MainFile)));
            return result;
        }

        foreach (var entry in map.Entries)
        {
            if (KubeNames.CheckDnsLabel(entry.Key) is { } why)
            {
                reader.Diagnostics.Error(entry.KeyLocation, $"subset name '{entry.Key}' {why}");
                continue;
            }

            var subset = entry.Value is ValueScalar { IsNull: true } ? null : reader.Map(entry.Value, $"subset '{entry.Key}'", SubsetKeys);
            var dcs = reader.StringList(subset?["datacenters"], $"{key}.{entry.Key}.datacenters") ?? dcNames;
            foreach (var dc in dcs.Where(dc => !dcNames.Contains(dc)))
            {
                reader.Diagnostics.Error(subset!["datacenters"]!.Location, $"subset '{entry.Key}' names unknown datacenter '{dc}' (known: {string.Join(", ", dcNames)})");
            }

            List<ReleaseRef>? releases = null;
            if (subset?["releases"] is { } releasesNode && reader.StringList(releasesNode, $"{key}.{entry.Key}.releases") is { } refs)
            {
                releases = [];
                foreach (var text in refs)
                {
                    var parts = text.Split('/');
                    if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    {
                        reader.Diagnostics.Error(releasesNode.Location, $"subset '{entry.Key}': release '{text}' must be written namespace/release");
                        continue;
                    }

                    releases.Add(new ReleaseRef(parts[0], parts[1]));
                }
            }

            result.Add(new SubsetSpec(entry.Key, dcs, releases, entry.KeyLocation));
        }

        return result;
    }
}
