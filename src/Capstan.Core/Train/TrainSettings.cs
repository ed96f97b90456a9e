using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Train;

/// <summary>
/// The weekly train (capstan.yaml's <c>train:</c>): the file in the config tree that says which wiki runs which
/// MediaWiki version (<c>wikiversions.json</c>), the directory of the wiki lists (<c>dblists/GROUP.dblist</c>), and
/// the groups the train moves through, in order.
/// </summary>
public sealed record TrainSettings(string WikiVersions, string Dblists, IReadOnlyList<string> Groups, SourceLocation Location)
{
    private static readonly string[] Keys = ["wikiversions", "dblists", "groups"];

    /// <summary>The name of the position before the first group: every wiki on the previous version.</summary>
    public const string Start = "START";

    /// <summary>Reads <c>train:</c> (null node: no train).</summary>
    public static TrainSettings? Read(NodeReader reader, ValueNode? node)
    {
        if (reader.Map(node, "train", Keys) is not { } map)
        {
            return null;
        }

        var wikiversions = reader.String(map["wikiversions"], "train.wikiversions") ?? "wikiversions.json";
        var dblists = reader.String(map["dblists"], "train.dblists") ?? "dblists";
        foreach (var (key, value) in new[] { ("wikiversions", wikiversions), ("dblists", dblists) })
        {
            if (Path.IsPathRooted(value) || value.Split('/').Contains(".."))
            {
                reader.Diagnostics.Error(map[key]!.Location, $"train.{key} '{value}' must be a path inside the config tree (image.config)");
            }
        }

        var groups = reader.StringList(map["groups"], "train.groups") ?? [];
        if (map["groups"] is null)
        {
            reader.Missing(map, "groups", "train");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in groups)
        {
            if (group == Start || group.Length == 0 || group.Contains('/', StringComparison.Ordinal) || group.StartsWith('.'))
            {
                reader.Diagnostics.Error(map["groups"]!.Location, $"train.groups: '{group}' is not a group name (a dblist's file name without .dblist; {Start} is reserved)");
            }
            else if (!seen.Add(group))
            {
                reader.Diagnostics.Error(map["groups"]!.Location, $"train.groups names '{group}' twice");
            }
        }

        return new TrainSettings(wikiversions, dblists, groups, node!.Location);
    }

    /// <summary>The wikiversions file, relative to the repo (under the config tree <paramref name="configTree"/>).</summary>
    public string WikiVersionsPath(string configTree) => Join(configTree, WikiVersions);

    /// <summary>A group's wiki list, relative to the repo.</summary>
    public string DblistPath(string configTree, string group) => Join(Join(configTree, Dblists), group + ".dblist");

    private static string Join(string a, string b) => a.Length == 0 || a == "." ? b : a.TrimEnd('/') + "/" + b;
}
