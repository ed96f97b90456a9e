using System.Text.Json.Nodes;

namespace Capstan.Core.Planning;

/// <summary>What a cluster holds of a release: its objects and the last successful deploy's record.</summary>
public sealed record LiveRelease(ReleaseId Id, IReadOnlyDictionary<string, JsonObject> Objects, ReleaseRecord? LastRecord)
{
    /// <summary>The key of an object in <see cref="Objects"/>: <c>Kind/name</c>.</summary>
    public static string Key(string kind, string name) => $"{kind}/{name}";
}

/// <summary>One deployed revision of a release, as stored in the cluster.</summary>
public sealed record ReleaseRecord(
    ReleaseId Id,
    int Revision,
    string Status,
    string ManifestHash,
    IReadOnlyList<JsonObject> Manifest,
    IReadOnlyDictionary<string, string> Images,
    string Actor,
    DateTimeOffset At,
    string Reason,
    string PlanId)
{
    /// <summary>The MediaWiki image of the revision (its app container's), or null for a release without MediaWiki.</summary>
    public string? MediaWikiImage => Images.Where(kv => kv.Key.EndsWith("-app", StringComparison.Ordinal)).Select(kv => kv.Value).FirstOrDefault();
}
