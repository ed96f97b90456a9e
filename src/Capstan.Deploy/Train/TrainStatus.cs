using System.Text.Json.Nodes;
using Capstan.Core.Train;
using Capstan.Kubernetes;

namespace Capstan.Deploy.Train;

/// <summary>
/// Where the train is: each group of wikis and its version(s) in the repo, the versions the image carries, the
/// blocker, and (when read) what the pods serve. <c>capstan train status</c> and the dashboard show the same.
/// </summary>
public sealed record TrainStatus(TrainMap Map, IReadOnlyList<string> ImageVersions, TrainBlocker? Blocker, TrainLive? Live)
{
    /// <summary>Reads the repo's map and the blocker, and what the pods serve when <paramref name="clusters"/> is given.</summary>
    public static async Task<TrainStatus> ReadAsync(TrainService train, IClusters? clusters, CancellationToken cancellationToken)
    {
        var map = train.Map();
        var blocker = await train.BlockerAsync(cancellationToken);
        var live = clusters is null ? null : await TrainLive.ReadAsync(train.Model, clusters, cancellationToken);
        return new TrainStatus(map, train.ImageVersions, blocker, live);
    }

    /// <summary>
    /// The group the train has reached, as a forward move counts it: the last of the groups that, from the first, run
    /// the image's newest version on every wiki; <see cref="TrainSettings.Start"/> when the first does not.
    /// </summary>
    public string Position
    {
        get
        {
            var newest = ImageVersions.Count == 0 ? null : ImageVersions[^1];
            var reached = Map.Groups.TakeWhile(g => g.Wikis.All(w => Map.Versions.Map.GetValueOrDefault(w) == newest)).LastOrDefault();
            return reached?.Name ?? TrainSettings.Start;
        }
    }

    /// <summary>The status as JSON (<c>train status -o json</c>, <c>/api/v1/train</c>).</summary>
    public JsonObject ToJson()
    {
        var repoText = Map.Versions.Write();
        return new JsonObject
        {
            ["position"] = Position,
            ["groups"] = new JsonArray([.. Map.Groups.Select(g => (JsonNode)new JsonObject
            {
                ["name"] = g.Name,
                ["wikis"] = g.Wikis.Count,
                ["versions"] = new JsonObject([.. Map.VersionsOf(g).Select(v => KeyValuePair.Create(v.Version, (JsonNode?)v.Wikis))]),
            })]),
            ["imageVersions"] = new JsonArray([.. ImageVersions.Select(v => (JsonNode)v)]),
            ["blocker"] = Blocker is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(Blocker, Json.CapstanJsonContext.Plain.TrainBlocker),
            ["live"] = Live is null ? null : new JsonObject
            {
                ["oneWikiVersions"] = Live.OneWikiVersions,
                ["images"] = new JsonArray([.. Live.Images.Select(i => (JsonNode)new JsonObject
                {
                    ["digest"] = i.Digest,
                    ["pods"] = i.Pods,
                    ["matchesRepo"] = i.Versions is null ? null : i.Versions.Write() == repoText,
                })]),
            },
        };
    }
}
