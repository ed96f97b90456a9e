using System.Text.Json.Nodes;
using Capstan.Core.Environments;

namespace Capstan.Deploy;

/// <summary>A values difference of one release of an environment.</summary>
public sealed record ReleaseValueDifference(string Release, ValueDifference Difference);

/// <summary>A dynamic-state value in which an environment differs from production.</summary>
public sealed record StateDifference(string Key, string Environment, string Production);

/// <summary>One backend on each side: where the environment gets it (own, shared:SET, production-readonly) and what each side talks to.</summary>
public sealed record BackendDifference(string Backend, string Kind, string Source, string Environment, string Production);

/// <summary>How an environment differs from production.</summary>
public sealed record EnvironmentDrift(string Environment, IReadOnlyList<ReleaseValueDifference> Values, IReadOnlyList<string> OnlyInProduction)
{
    /// <summary>Where the environment's dynamic state differs from production's.</summary>
    public IReadOnlyList<StateDifference> State { get; init; } = [];

    /// <summary>Every backend, on each side (listed whether or not it differs; not counted in <see cref="Count"/>).</summary>
    public IReadOnlyList<BackendDifference> Backends { get; init; } = [];

    /// <summary>Fields of the environment's live objects changed by someone other than Capstan (a kubectl edit), from managedFields.</summary>
    public IReadOnlyList<string> Live { get; init; } = [];

    /// <summary>How many differences there are in all.</summary>
    public int Count => Values.Count + OnlyInProduction.Count + State.Count + Live.Count;

    /// <summary>The report as <c>capstan env drift -o json</c> prints it (and the dashboard serves it).</summary>
    public JsonObject ToJson() => new()
    {
        ["environment"] = Environment,
        ["values"] = new JsonArray([.. Values.Select(v => (JsonNode)new JsonObject
        {
            ["release"] = v.Release,
            ["key"] = v.Difference.Path,
            ["environment"] = v.Difference.Environment,
            ["environmentSetBy"] = v.Difference.EnvironmentSetBy?.ToString(),
            ["production"] = v.Difference.Production,
            ["productionSetBy"] = v.Difference.ProductionSetBy?.ToString(),
        })]),
        ["state"] = new JsonArray([.. State.Select(d => (JsonNode)new JsonObject { ["key"] = d.Key, ["environment"] = d.Environment, ["production"] = d.Production })]),
        ["onlyInProduction"] = new JsonArray([.. OnlyInProduction.Select(o => (JsonNode)o)]),
        ["live"] = new JsonArray([.. Live.Select(l => (JsonNode)l)]),
        ["backends"] = new JsonArray([.. Backends.Select(b => (JsonNode)new JsonObject
        {
            ["backend"] = b.Backend, ["kind"] = b.Kind, ["source"] = b.Source, ["environment"] = b.Environment, ["production"] = b.Production,
        })]),
        ["count"] = Count,
    };
}

/// <summary>What a refresh did: a line per environment, and how many failed.</summary>
public sealed record RefreshReport(IReadOnlyList<string> Lines, int Failed);
