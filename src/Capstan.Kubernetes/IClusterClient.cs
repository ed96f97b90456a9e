using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.Kubernetes;

/// <summary>An object's identity in a cluster.</summary>
public sealed record ObjectRef(string ApiVersion, string Kind, string? Namespace, string Name)
{
    /// <summary>The identity of a rendered or live object.</summary>
    public static ObjectRef Of(JsonObject obj) => new(
        obj["apiVersion"]?.GetValue<string>() ?? throw new ArgumentException("object has no apiVersion", nameof(obj)),
        obj["kind"]?.GetValue<string>() ?? throw new ArgumentException("object has no kind", nameof(obj)),
        obj.Kube.Namespace,
        obj["metadata"]?["name"]?.GetValue<string>() ?? throw new ArgumentException("object has no name", nameof(obj)));

    /// <inheritdoc/>
    public override string ToString() => Namespace is null ? $"{Kind}/{Name}" : $"{Kind}/{Namespace}/{Name}";
}

/// <summary>How a delete propagates to dependents.</summary>
public enum Propagation
{
    /// <summary>Delete now; the garbage collector removes dependents afterwards.</summary>
    Background,

    /// <summary>Delete dependents first; the object goes last.</summary>
    Foreground,

    /// <summary>Leave dependents, without their owner.</summary>
    Orphan,
}

/// <summary>What a watch reports.</summary>
public enum WatchEventType
{
    /// <summary>Created (or present when the watch started).</summary>
    Added,

    /// <summary>Changed.</summary>
    Modified,

    /// <summary>Deleted.</summary>
    Deleted,

    /// <summary>No change, only a newer resourceVersion to resume from.</summary>
    Bookmark,

    /// <summary>
    /// A (re)list ended: every current object has just been reported as <see cref="Added"/>, and <see
    /// cref="KubeWatchEvent.Object"/> is the list (its <c>items</c> and <c>metadata.resourceVersion</c>). A cache keeps only
    /// those items: objects deleted while the watch could not resume are not reported otherwise.
    /// </summary>
    Synced,
}

/// <summary>One watch event.</summary>
public sealed record KubeWatchEvent(WatchEventType Type, JsonObject Object)
{
    /// <summary>The object's resourceVersion.</summary>
    public string? ResourceVersion => Object["metadata"]?["resourceVersion"]?.GetValue<string>();
}

/// <summary>A list and the resourceVersion it was read at (to watch from).</summary>
public sealed record ObjectList(IReadOnlyList<JsonObject> Items, string ResourceVersion);

/// <summary>
/// The cluster port: only the calls Capstan needs, the same for a real cluster and the local one.
/// </summary>
public interface IClusterClient : IAsyncDisposable
{
    /// <summary>The API server.</summary>
    Uri Server { get; }

    /// <summary>Server-side apply with field manager <c>capstan</c>; <paramref name="force"/> takes fields from other managers.</summary>
    Task<JsonObject> ApplyAsync(JsonObject obj, bool force, bool dryRun, CancellationToken cancellationToken);

    /// <summary>Server-side apply under another field manager (a handover of fields, such as replicas to an autoscaler).</summary>
    Task<JsonObject> ApplyAsync(JsonObject obj, string fieldManager, CancellationToken cancellationToken);

    /// <summary>
    /// A JSON merge patch (RFC 7396) under its own field manager, for changes that are not part of the desired state,
    /// such as the restart annotation of a rolling restart.
    /// </summary>
    Task<JsonObject> PatchAsync(ObjectRef reference, JsonObject mergePatch, string fieldManager, CancellationToken cancellationToken);

    /// <summary>An object, or null when absent.</summary>
    Task<JsonObject?> GetAsync(ObjectRef reference, CancellationToken cancellationToken);

    /// <summary>Objects of a kind (in a namespace, or all) matching a label selector.</summary>
    Task<ObjectList> ListAsync(string apiVersion, string kind, string? ns, string? labelSelector, CancellationToken cancellationToken);

    /// <summary>Deletes an object; false when it did not exist.</summary>
    Task<bool> DeleteAsync(ObjectRef reference, Propagation propagation, CancellationToken cancellationToken);

    /// <summary>
    /// Changes from <paramref name="resourceVersion"/> on (null: the current objects first, as ADDED, then <see
    /// cref="WatchEventType.Synced"/>). Reconnects after a dropped stream from the last version seen (bookmarks included);
    /// when that version is too old it lists again, reporting the list the same way.
    /// </summary>
    IAsyncEnumerable<KubeWatchEvent> WatchAsync(string apiVersion, string kind, string? ns, string? labelSelector, string? resourceVersion, CancellationToken cancellationToken);

    /// <summary>
    /// A container's log lines (<c>GET …/pods/NAME/log</c>); with <paramref name="follow"/> the stream stays open until
    /// the container ends.
    /// </summary>
    IAsyncEnumerable<string> ReadLogAsync(string ns, string pod, string container, bool follow, CancellationToken cancellationToken);

    /// <summary>
    /// Whether a kind lives in namespaces, as the server's discovery says (asked once per group version); <see
    /// cref="KubeNotFoundException"/> when the server serves no such kind (a custom resource whose definition is missing).
    /// </summary>
    Task<bool> IsNamespacedAsync(string apiVersion, string kind, CancellationToken cancellationToken);

    /// <summary>How far the newest revision of a Deployment has rolled out.</summary>
    Task<RolloutStatus> GetRolloutStatusAsync(string ns, string name, CancellationToken cancellationToken);
}

/// <summary>The clusters of a command, one client per datacenter (however they were connected).</summary>
public interface IClusters
{
    /// <summary>The client of a datacenter.</summary>
    IClusterClient this[string dc] { get; }

    /// <summary>The datacenters connected.</summary>
    IReadOnlyCollection<string> Datacenters { get; }
}
