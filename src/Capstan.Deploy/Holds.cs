using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>
/// A rolled-back revision that no deploy may silently apply again: the release, the manifest hash and MediaWiki image
/// that were rolled back, who did it, when, why and in which plan.
/// </summary>
public sealed record ReleaseHold(ReleaseId Release, string ManifestHash, string? Image, string Actor, DateTimeOffset At, string Reason, string? Plan)
{
    /// <summary>The hold as stored.</summary>
    public string ToJson() =>
        System.Text.Json.JsonSerializer.Serialize(new Json.HoldJson(Release.ToString(), ManifestHash, Image, Actor, At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), Reason, Plan), Json.CapstanJsonContext.Plain.HoldJson);

    /// <summary>Reads a stored hold; null for one that cannot be read (it is then listed by its key alone).</summary>
    public static ReleaseHold? FromJson(string json)
    {
        try
        {
            var doc = JsonNode.Parse(json) as JsonObject;
            return doc is null || ReleaseId.Parse(doc["release"]?.GetValue<string>() ?? string.Empty) is not { } id
                ? null
                : new ReleaseHold(
                    id,
                    doc["manifestHash"]?.GetValue<string>() ?? string.Empty,
                    doc["image"]?.GetValue<string>(),
                    doc["actor"]?.GetValue<string>() ?? "?",
                    DateTimeOffset.Parse(doc["at"]?.GetValue<string>() ?? "1970-01-01T00:00:00Z", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                    doc["reason"]?.GetValue<string>() ?? string.Empty,
                    doc["plan"]?.GetValue<string>());
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>One line for people: what is held and why.</summary>
    public override string ToString() =>
        $"{Release} is held: {Actor} rolled back {Image ?? "manifest " + ManifestHash[..Math.Min(12, ManifestHash.Length)]} at {At.UtcDateTime:yyyy-MM-dd HH:mm} UTC ({Reason})";
}

/// <summary>A deploy would apply a held revision again; nothing was applied.</summary>
public sealed class ReleaseHeldException(string message) : CapstanException(RefusalKind.NotAllowed, message);

/// <summary>
/// The holds of a farm (or of a test environment's project), kept in the state store beside its dynamic state, under
/// <c>PROJECT/holds/DC/NAMESPACE/RELEASE</c>.
/// </summary>
public sealed class HoldStore(IStateStore store, string project)
{
    private string Prefix => $"{project}/holds/";

    private string Key(ReleaseId id) => $"{Prefix}{id.Datacenter}/{id.Namespace}/{id.Release}";

    /// <summary>Records a hold (replacing an older one of the release).</summary>
    public async Task PutAsync(ReleaseHold hold, CancellationToken cancellationToken) =>
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Key(hold.Release), hold.ToJson())]), cancellationToken);

    /// <summary>Every hold, by release.</summary>
    public async Task<IReadOnlyList<ReleaseHold>> ListAsync(CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(Prefix, cancellationToken);
        return [.. items.Select(i => ReleaseHold.FromJson(i.Value)).OfType<ReleaseHold>().OrderBy(h => h.Release.ToString(), StringComparer.Ordinal)];
    }

    /// <summary>Removes a release's hold; false when it had none.</summary>
    public async Task<bool> ReleaseAsync(ReleaseId id, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(Key(id), cancellationToken) is null)
        {
            return false;
        }

        await store.CommitAsync(new StoreTxn([], [new StoreOp.Delete(Key(id))]), cancellationToken);
        return true;
    }
}
