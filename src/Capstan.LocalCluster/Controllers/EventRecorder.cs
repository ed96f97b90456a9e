using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Records core/v1 Events the way the real components do: one Event per object, reason and message, whose
/// <c>count</c> and <c>lastTimestamp</c> grow when the same thing happens again (so a crash loop is one Event with a
/// rising count, not thousands). Events live for an hour, as on a real cluster.
/// </summary>
internal sealed class EventRecorder(ObjectStore store, TimeProvider time)
{
    /// <summary>How long an Event is kept after it last happened (kube-apiserver's default --event-ttl).</summary>
    public static readonly TimeSpan Ttl = ObjectStore.EventTtl;

    private static readonly ResourceType Events = ResourceTypes.ByKind("Event")!;

    public void Normal(JsonObject involved, string reason, string message, string component) => Record(involved, "Normal", reason, message, component);

    public void Warning(JsonObject involved, string reason, string message, string component) => Record(involved, "Warning", reason, message, component);

    private void Record(JsonObject involved, string type, string reason, string message, string component)
    {
        var ns = Json.Namespace(involved) ?? "default";
        var uid = Json.Uid(involved);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{uid}\n{type}\n{reason}\n{message}\n{component}")))[..16];
        var name = $"{Json.Name(involved)}.{key}";
        var now = Json.Stamp(time.GetUtcNow());
        store.RecordEvent(ns, name, existing =>
        {
            if (existing is not null)
            {
                var again = (JsonObject)existing.DeepClone();
                again["count"] = Json.Int(existing["count"], 1) + 1;
                again["lastTimestamp"] = now;
                return again;
            }

            return new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Event",
                ["metadata"] = new JsonObject(),
                ["involvedObject"] = new JsonObject
                {
                    ["apiVersion"] = involved["apiVersion"]?.DeepClone(),
                    ["kind"] = involved["kind"]?.DeepClone(),
                    ["namespace"] = Json.Namespace(involved),
                    ["name"] = Json.Name(involved),
                    ["uid"] = uid,
                },
                ["reason"] = reason,
                ["message"] = message,
                ["type"] = type,
                ["count"] = 1,
                ["firstTimestamp"] = now,
                ["lastTimestamp"] = now,
                ["source"] = new JsonObject { ["component"] = component },
                ["reportingComponent"] = component,
                ["reportingInstance"] = component == "kubelet" ? "local-node-1" : component,
            };
        }, component);
    }

    /// <summary>When Events were last expired; the first look is a minute after start, so a short-lived server never
    /// loads the Events it keeps on disk.</summary>
    private DateTimeOffset _lastExpiry = time.GetUtcNow();

    /// <summary>Removes Events that last happened longer ago than <see cref="Ttl"/> (looked at once a minute).</summary>
    public void Expire()
    {
        if (time.GetUtcNow() - _lastExpiry < TimeSpan.FromMinutes(1))
        {
            return;
        }

        _lastExpiry = time.GetUtcNow();
        var cutoff = _lastExpiry - Ttl;
        var expired = 0;
        foreach (var e in store.ListShared(Events, null).Items.Where(e => Json.Time(e["lastTimestamp"]) is { } last && last < cutoff))
        {
            store.Remove(Events, Json.Namespace(e), Json.Name(e));
            expired++;
        }

        if (expired > 0)
        {
            store.ReclaimSpace();
        }
    }
}
