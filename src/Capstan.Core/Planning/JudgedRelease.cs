using System.Text.Json.Nodes;

namespace Capstan.Core.Planning;

/// <summary>What the server was asked about one desired object, and what it said.</summary>
public enum VerdictKind
{
    /// <summary>Not asked: the object equals what the last deploy applied, with every field live as written.</summary>
    NotAsked,

    /// <summary>Asked, and the server answered with the object an apply would leave.</summary>
    Answered,

    /// <summary>Asked, and refused (a conflict, no permission, an invalid or immutable field): compare fields instead.</summary>
    NoVerdict,
}

/// <summary>The verdict on one object: its kind, and the server's result when it answered.</summary>
public readonly record struct Verdict(VerdictKind Kind, JsonObject? Result = null);

/// <summary>
/// One release as the server judge compared it, for the planner to use as is: its desired objects (serialised once),
/// what its last deploy applied by key, and a verdict per live object. Each object is compared once per plan.
/// </summary>
public sealed record JudgedRelease(IReadOnlyList<JsonObject> Objects, IReadOnlyDictionary<string, JsonObject> LastApplied, IReadOnlyDictionary<string, Verdict> Verdicts)
{
    /// <summary>How many objects the server was asked about.</summary>
    public int Asked => Verdicts.Values.Count(v => v.Kind != VerdictKind.NotAsked);

    /// <summary>How many of those it answered.</summary>
    public int Answered => Verdicts.Values.Count(v => v.Kind == VerdictKind.Answered);
}
