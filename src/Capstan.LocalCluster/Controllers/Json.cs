using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>Small readers for the JSON objects controllers work on.</summary>
internal static class Json
{
    public static string Name(JsonObject o) => o.Kube.Name;

    public static string? Namespace(JsonObject o) => o.Kube.Namespace;

    public static string Uid(JsonObject o) => Str(o["metadata"]?["uid"]) ?? throw new InvalidOperationException($"{o.Kube.Kind} {o.Kube.Name} has no metadata.uid");

    /// <summary>
    /// The object at <paramref name="field"/> of <paramref name="o"/>. Admission guarantees it for the objects
    /// controllers read; an object without it is a bug of the server, reported as such, never a NullReferenceException.
    /// </summary>
    public static JsonObject Obj(JsonObject o, string field) =>
        o[field] as JsonObject ?? throw new InvalidOperationException($"{o.Kube.Kind} {o.Kube.Name} has no object at {field}");

    public static long Generation(JsonObject o) => JsonNumber.Long(o["metadata"]?["generation"]) ?? 0;

    public static bool Deleting(JsonObject o) => o["metadata"]?["deletionTimestamp"] is not null;

    public static int Int(JsonNode? node, int fallback = 0) => JsonNumber.Long(node) is { } n ? (int)n : fallback;

    public static string? Str(JsonNode? node) => node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;

    public static DateTimeOffset? Time(JsonNode? node) =>
        Str(node) is { } text && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : null;

    public static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static bool OwnedBy(JsonObject o, string uid) =>
        (o["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => Str(r?["uid"]) == uid);

    public static JsonObject OwnerReference(JsonObject owner) => new()
    {
        ["apiVersion"] = owner.Kube.ApiVersion,
        ["kind"] = owner.Kube.Kind,
        ["name"] = Name(owner),
        ["uid"] = Uid(owner),
        ["controller"] = true,
        ["blockOwnerDeletion"] = true,
    };

    /// <summary>A short random suffix of lower-case letters and digits, as Kubernetes generates for pod names.</summary>
    public static string Suffix(int length = 5)
    {
        const string Alphabet = "bcdfghjklmnpqrstvwxz2456789";
        Span<char> chars = stackalloc char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = Alphabet[System.Security.Cryptography.RandomNumberGenerator.GetInt32(Alphabet.Length)];
        }

        return new string(chars);
    }

    /// <summary>A count from an int-or-percent of a total (surge rounds up, unavailability down).</summary>
    public static int Scaled(JsonNode? value, int total, bool roundUp, int fallback)
    {
        if (value is null)
        {
            return fallback;
        }

        if (value.GetValueKind() == JsonValueKind.Number)
        {
            return (int)JsonNumber.Long(value)!.Value;
        }

        var text = value.GetValue<string>();
        if (text.EndsWith('%') && int.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var percent))
        {
            var exact = total * percent / 100.0;
            return roundUp ? (int)Math.Ceiling(exact) : (int)Math.Floor(exact);
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : fallback;
    }

    /// <summary>Sets or replaces a condition of a status, keeping its transition time when the status did not change.</summary>
    public static void SetCondition(JsonObject status, string type, string value, string reason, string message, string now, bool touchUpdate = true)
    {
        var conditions = status["conditions"] as JsonArray ?? [];
        status["conditions"] = conditions;
        var existing = conditions.FirstOrDefault(c => Str(c?["type"]) == type) as JsonObject;
        var transition = existing is not null && Str(existing["status"]) == value ? Str(existing["lastTransitionTime"]) ?? now : now;
        var lastUpdate = touchUpdate || existing is null ? now : Str(existing["lastUpdateTime"]) ?? now;
        var condition = new JsonObject
        {
            ["type"] = type,
            ["status"] = value,
            ["lastUpdateTime"] = lastUpdate,
            ["lastTransitionTime"] = transition,
            ["reason"] = reason,
            ["message"] = message,
        };
        if (existing is not null)
        {
            conditions[conditions.IndexOf(existing)] = condition;
        }
        else
        {
            conditions.Add(condition);
        }
    }

    public static JsonObject? Condition(JsonObject? status, string type) =>
        (status?["conditions"] as JsonArray ?? []).FirstOrDefault(c => Str(c?["type"]) == type) as JsonObject;

    /// <summary>True when a pod's Ready condition is True.</summary>
    public static bool PodReady(JsonObject pod) => Str(Condition(pod["status"] as JsonObject, "Ready")?["status"]) == "True";

    /// <summary>A short stable hash of a text: the revision of a pod template, as the controllers label their pods with it.</summary>
    public static string ShortHash(string text) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..10].ToLowerInvariant();
}
