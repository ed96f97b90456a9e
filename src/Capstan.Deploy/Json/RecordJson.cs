using System.Text.Json;
using System.Text.Json.Serialization;
using Capstan.Core.Planning;

namespace Capstan.Deploy.Json;

/// <summary>
/// One deployed revision of a release as it leaves the process: <c>capstan history -o json</c>, the dashboard's
/// release page and <c>/api/v1</c> say the same names (<c>actor</c>, <c>at</c>, <c>planId</c>) as the record's own
/// Secret does. Serialised by <see cref="CapstanJsonContext"/>, generated at build time.
/// </summary>
public sealed record RevisionJson(
    string Release,
    int Revision,
    string Status,
    DateTimeOffset At,
    string Actor,
    string Reason,
    string PlanId,
    string ManifestHash,
    string? MediawikiImage,
    IReadOnlyDictionary<string, string> Images)
{
    /// <summary>The JSON form of a record.</summary>
    public static RevisionJson Of(ReleaseRecord record) => new(
        record.Id.ToString(), record.Revision, record.Status, record.At, record.Actor, record.Reason, record.PlanId, record.ManifestHash, record.MediaWikiImage,
        new SortedDictionary<string, string>(record.Images.ToDictionary(), StringComparer.Ordinal));

    /// <summary>Revisions as a JSON array (indented for people when <paramref name="indented"/>).</summary>
    public static string Serialize(IEnumerable<RevisionJson> revisions, bool indented = false) =>
        JsonSerializer.Serialize(revisions.ToList(), (indented ? CapstanJsonContext.Indented : CapstanJsonContext.Plain).ListRevisionJson);

    /// <summary>Revisions as a JSON node, for a document built around them.</summary>
    public static System.Text.Json.Nodes.JsonNode ToNode(IEnumerable<RevisionJson> revisions) =>
        JsonSerializer.SerializeToNode(revisions.ToList(), CapstanJsonContext.Plain.ListRevisionJson)!;
}

/// <summary>A hold as stored under <c>PROJECT/holds/</c> (<see cref="ReleaseHold"/>); its time to the second, in UTC (<c>2026-12-07T13:00:00Z</c>).</summary>
public sealed record HoldJson(string Release, string ManifestHash, string? Image, string Actor, string At, string Reason, string? Plan);

/// <summary>The source-generated serialisers of the records Capstan writes as JSON.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<RevisionJson>))]
[JsonSerializable(typeof(HoldJson))]
[JsonSerializable(typeof(LockHolder))]
[JsonSerializable(typeof(Train.TrainBlocker))]
public sealed partial class CapstanJsonContext : JsonSerializerContext
{
    /// <summary>Compact, with text as written (no <c>\u002B</c> for '+', no escapes for non-ASCII letters).</summary>
    public static CapstanJsonContext Plain { get; } = new(NewOptions(indented: false));

    /// <summary>The same, indented for people.</summary>
    public static CapstanJsonContext Indented { get; } = new(NewOptions(indented: true));

    private static JsonSerializerOptions NewOptions(bool indented) => new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = indented,
        Converters = { new RoundTripTime() },
    };
}

/// <summary>Times as the records store them: ISO 8601 round-trip (<c>"O"</c>), all seven fraction digits.</summary>
internal sealed class RoundTripTime : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
}
