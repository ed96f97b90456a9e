using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Core.State;

/// <summary>Who changed the state, when and why.</summary>
public sealed record ChangeStamp(string Actor, DateTimeOffset At, string Reason);

/// <summary>The stored form of the dynamic state: the state, a sequence number and the last change's stamp.</summary>
public sealed record StateDocument(DynamicState State, long Sequence, ChangeStamp Updated);

/// <summary>One entry of the state's history.</summary>
public sealed record StateHistoryEntry(long Sequence, ChangeStamp Stamp, string Change, bool Forced, DynamicState? Previous, DynamicState Current);

/// <summary>
/// The JSON form of the state and its history, as stored in etcd or the file store. Reading is strict: a document
/// that does not parse is reported as corrupt, never guessed at.
/// </summary>
public static class StateJson
{
    /// <summary>The JSON of a state document.</summary>
    public static string Write(StateDocument doc)
    {
        var node = StateNode(doc.State);
        node["sequence"] = doc.Sequence;
        node["updated"] = StampNode(doc.Updated);
        return node.ToJsonString();
    }

    /// <summary>The JSON of a history entry.</summary>
    public static string Write(StateHistoryEntry entry) => new JsonObject
    {
        ["sequence"] = entry.Sequence,
        ["actor"] = entry.Stamp.Actor,
        ["at"] = entry.Stamp.At.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        ["reason"] = entry.Stamp.Reason,
        ["change"] = entry.Change,
        ["forced"] = entry.Forced,
        ["previous"] = entry.Previous is null ? null : StateNode(entry.Previous),
        ["current"] = StateNode(entry.Current),
    }.ToJsonString();

    /// <summary>Parses a state document; throws <see cref="FormatException"/> with the reason when it is not one.</summary>
    public static StateDocument ReadDocument(string json)
    {
        var node = Parse(json);
        return new StateDocument(ReadState(node), Long(node, "sequence"), ReadStamp(Obj(node, "updated")));
    }

    /// <summary>Parses a history entry; throws <see cref="FormatException"/>.</summary>
    public static StateHistoryEntry ReadHistory(string json)
    {
        var node = Parse(json);
        return new StateHistoryEntry(
            Long(node, "sequence"),
            ReadStamp(node),
            Str(node, "change"),
            node["forced"]?.GetValue<bool>() ?? false,
            node["previous"] is JsonObject previous ? ReadState(previous) : null,
            ReadState(Obj(node, "current")));
    }

    /// <summary>The JSON object of a bare state (also used for <c>--output json</c>).</summary>
    public static JsonObject StateNode(DynamicState s) => new()
    {
        ["primary_dc"] = s.PrimaryDc,
        ["read_only"] = new JsonObject(s.ReadOnly.Select(kv => KeyValuePair.Create(kv.Key, kv.Value is null ? (JsonNode?)false : kv.Value))),
        ["maintenance_enabled"] = s.MaintenanceEnabled,
        ["maintenance_reason"] = s.MaintenanceReason,
    };

    private static JsonObject StampNode(ChangeStamp stamp) => new()
    {
        ["actor"] = stamp.Actor,
        ["at"] = stamp.At.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        ["reason"] = stamp.Reason,
    };

    private static DynamicState ReadState(JsonObject node)
    {
        var readOnly = ImmutableSortedDictionary.CreateBuilder<string, string?>(StringComparer.Ordinal);
        foreach (var (dc, value) in Obj(node, "read_only"))
        {
            readOnly[dc] = value?.GetValueKind() switch
            {
                JsonValueKind.False => null,
                JsonValueKind.String => value.GetValue<string>(),
                _ => throw new FormatException($"read_only.{dc} must be false or a reason string"),
            };
        }

        var enabled = node["maintenance_enabled"]?.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FormatException("maintenance_enabled must be true or false"),
        };
        var reason = node["maintenance_reason"]?.GetValueKind() == JsonValueKind.String ? node["maintenance_reason"]!.GetValue<string>() : null;
        return new DynamicState(Str(node, "primary_dc"), readOnly.ToImmutable(), enabled, reason);
    }

    private static ChangeStamp ReadStamp(JsonObject node)
    {
        if (!DateTimeOffset.TryParse(Str(node, "at"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var at))
        {
            throw new FormatException("'at' is not a timestamp");
        }

        return new ChangeStamp(Str(node, "actor"), at, Str(node, "reason"));
    }

    private static JsonObject Parse(string json)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject ?? throw new FormatException("not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new FormatException("not valid JSON: " + ex.Message, ex);
        }
    }

    private static JsonObject Obj(JsonObject node, string key) =>
        node[key] as JsonObject ?? throw new FormatException($"'{key}' is missing or not an object");

    private static string Str(JsonObject node, string key) =>
        node[key]?.GetValueKind() == JsonValueKind.String ? node[key]!.GetValue<string>() : throw new FormatException($"'{key}' is missing or not a string");

    private static long Long(JsonObject node, string key) =>
        node[key]?.GetValueKind() == JsonValueKind.Number ? node[key]!.GetValue<long>() : throw new FormatException($"'{key}' is missing or not a number");
}
