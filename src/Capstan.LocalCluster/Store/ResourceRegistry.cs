using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// The resources one cluster serves: the built-in ones (<see cref="ResourceTypes"/>) and those its established
/// CustomResourceDefinitions add. Read without a lock: a change publishes a new immutable view.
/// </summary>
public sealed class ResourceRegistry
{
    private sealed record View(
        IReadOnlyList<ResourceType> All,
        IReadOnlyList<string> Groups,
        Dictionary<(string Group, string Version, string Plural), ResourceType> ByPath,
        Dictionary<(string ApiVersion, string Kind), ResourceType> ByKind,
        Dictionary<string, ResourceType> ByKey);

    private View _view = Build([]);

    /// <summary>Every served resource, the built-in ones first.</summary>
    public IReadOnlyList<ResourceType> All => _view.All;

    /// <summary>The API groups in discovery order (the core group excluded).</summary>
    public IReadOnlyList<string> Groups => _view.Groups;

    /// <summary>The custom resources alone.</summary>
    public IEnumerable<ResourceType> Custom => _view.All.Where(t => t.Custom is not null);

    /// <summary>A resource by group, version and plural, or null.</summary>
    public ResourceType? Find(string group, string version, string plural) => _view.ByPath.GetValueOrDefault((group, version, plural));

    /// <summary>A resource by apiVersion and kind, or null.</summary>
    public ResourceType? ByKind(string? apiVersion, string? kind) =>
        apiVersion is null || kind is null ? null : _view.ByKind.GetValueOrDefault((apiVersion, kind));

    /// <summary>A resource by the store's key (<c>apiVersion/plural</c>), or null.</summary>
    internal ResourceType? ByKey(string key) => _view.ByKey.GetValueOrDefault(key);

    /// <summary>The apiVersion and kind an object names, or null when this cluster does not serve them.</summary>
    public ResourceType? Of(JsonObject obj) => ByKind(obj["apiVersion"]?.GetValue<string>(), obj["kind"]?.GetValue<string>());

    /// <summary>Serves the custom resources of these definitions (replacing those served before).</summary>
    internal void SetCustom(IEnumerable<ResourceType> custom) => _view = Build(custom);

    private static View Build(IEnumerable<ResourceType> custom)
    {
        // A definition may not take a built-in resource's place: kube-apiserver refuses its names (NamesAccepted).
        var all = ResourceTypes.All.Concat(custom.Where(c => ResourceTypes.Find(c.Group, c.Version, c.Plural) is null)).ToList();
        return new View(
            all,
            [.. all.Select(r => r.Group).Where(g => g.Length > 0).Distinct()],
            all.DistinctBy(r => (r.Group, r.Version, r.Plural)).ToDictionary(r => (r.Group, r.Version, r.Plural)),
            all.DistinctBy(r => (r.ApiVersion, r.Kind)).ToDictionary(r => (r.ApiVersion, r.Kind)),
            all.DistinctBy(r => r.ApiVersion + "/" + r.Plural).ToDictionary(r => r.ApiVersion + "/" + r.Plural, StringComparer.Ordinal));
    }
}
