using System.Text.Json.Nodes;
using Capstan.Core.Config;

namespace Capstan.Core.Planning;

/// <summary>A release in one datacenter: the unit the planner and the executor work on.</summary>
public sealed record ReleaseId(string Datacenter, string Namespace, string Release)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Datacenter}/{Namespace}/{Release}";

    /// <summary>Parses <c>dc/namespace/release</c>; null when it is not of that shape.</summary>
    public static ReleaseId? Parse(string text) =>
        text.Split('/') is [var dc, var ns, var release] && dc.Length > 0 && ns.Length > 0 && release.Length > 0 ? new ReleaseId(dc, ns, release) : null;
}

/// <summary>What happens to a release.</summary>
public enum ReleaseChange
{
    /// <summary>Nothing to do: live objects match and the last record is of the same manifest.</summary>
    NoOp,

    /// <summary>First deploy of the release in this datacenter.</summary>
    Install,

    /// <summary>Some objects change, appear or go.</summary>
    Upgrade,
}

/// <summary>What happens to an object that a deploy applies.</summary>
public enum ObjectAction
{
    /// <summary>The object does not exist yet.</summary>
    Create,

    /// <summary>The object exists and applying the desired one changes it (fields set and removed, as the server judged).</summary>
    Update,
}

/// <summary>
/// One object to apply: created, or updated with the fields the server says the apply sets and removes (paths such
/// as <c>.spec.template.spec.containers</c>). <see cref="Judged"/> is the server's dry-run result of the apply, when
/// the server was asked.
/// </summary>
public sealed record ObjectChange(
    string Kind,
    string Name,
    ObjectAction Action,
    JsonObject Desired,
    JsonObject? Live,
    IReadOnlyList<string> FieldsSet,
    IReadOnlyList<string> FieldsRemoved,
    JsonObject? Judged = null)
{
    /// <summary>Why, for people: <c>new</c>, or the fields set and removed (the first few).</summary>
    public string Why => Action == ObjectAction.Create ? "new"
        : FieldsSet.Count == 0 && FieldsRemoved.Count == 0 ? "restore"
        : string.Join(", ", new[] { Summary("set", FieldsSet), Summary("removed", FieldsRemoved) }.Where(s => s.Length > 0));

    /// <summary>An object put back as it was (rollback): applied whole, whatever the live one holds.</summary>
    public static ObjectChange Restore(string kind, string name, JsonObject obj) => new(kind, name, ObjectAction.Update, obj, null, [], []);

    private static string Summary(string verb, IReadOnlyList<string> paths) =>
        paths.Count == 0 ? string.Empty : $"{verb} {string.Join(" ", paths.Take(3))}{(paths.Count > 3 ? $" (+{paths.Count - 3} more)" : string.Empty)}";
}

/// <summary>An object to delete because the release no longer renders it.</summary>
public sealed record ObjectPrune(string ApiVersion, string Kind, string? Namespace, string Name);

/// <summary>The plan of one release.</summary>
public sealed record ReleaseAction(
    ReleaseId Id,
    ReleaseKind Kind,
    Stage Stage,
    ReleaseChange Change,
    IReadOnlyList<JsonObject> Desired,
    IReadOnlyList<ObjectChange> Apply,
    IReadOnlyList<ObjectPrune> Prune,
    IReadOnlyList<ReleaseId> Needs,
    string ManifestHash,
    int? PreviousRevision)
{
    /// <summary>Fields of this release's live objects that someone other than Capstan and the cluster changed or added.</summary>
    public IReadOnlyList<ObjectDrift> Drift { get; init; } = [];
}

/// <summary>A field of a live object that a manager other than Capstan and the cluster's controllers owns.</summary>
public sealed record ObjectDrift(string Kind, string Name, string Path, string Manager);

/// <summary>
/// A deploy as data: release actions across datacenters, with the edges that order them (needs, and stage barriers),
/// and the concurrency limit per cluster. Built by <see cref="Planner"/>; run by the executor.
/// </summary>
public sealed record Plan(string Id, IReadOnlyList<ReleaseAction> Actions, IReadOnlyList<(string Datacenter, string Namespace)> Namespaces, int ConcurrencyPerCluster)
{
    /// <summary>True when nothing changes.</summary>
    public bool IsNoOp => Actions.All(a => a.Change == ReleaseChange.NoOp) && Namespaces.Count == 0;

    /// <summary>The actions an action waits for: its needs in the same datacenter and every action of an earlier stage.</summary>
    public IReadOnlyList<ReleaseAction> Dependencies(ReleaseAction action) =>
        [.. Actions.Where(other => other != action && (action.Needs.Contains(other.Id) || other.Stage < action.Stage))];
}
