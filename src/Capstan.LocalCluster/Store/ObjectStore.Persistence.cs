using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <content>Loading from and writing to the cluster database.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// Loads the objects of <paramref name="database"/> into an empty store and writes every later change to it. A
    /// cluster kept in the older <c>objects.json</c> snapshot (<paramref name="legacySnapshot"/>) is imported once.
    /// </summary>
    internal void Attach(ClusterDatabase database, string? legacySnapshot)
    {
        lock (_lock)
        {
            if (database.IsEmpty && legacySnapshot is not null)
            {
                var snapshot = JsonNode.Parse(legacySnapshot)!.AsObject();
                var rv = JsonNumber.Long(snapshot["resourceVersion"]) ?? 1;
                var imported = (snapshot["objects"] as JsonArray ?? []).OfType<JsonObject>()
                    .Select(o => (Type: TypeOf(o), Object: o)).Where(o => o.Type is not null)
                    .Select(o => Key(o.Type!, o.Object.Kube.Namespace, o.Object.Kube.Name) is var key
                        ? (key.Item1, key.Item2, key.Item3, JsonNumber.Long(o.Object["metadata"]?["resourceVersion"]) ?? rv, o.Object)
                        : default);
                database.PutAll(imported, rv);
            }

            // Events last seen more than the TTL ago go before anything is read (the server's sweep takes the rest as
            // they age); their space is given back. Later Events are read only by the first request for Events.
            var events = TypeKey(EventType);
            var (bodies, resourceVersion) = database.Load(events);
            if (database.ExpireEvents(events, Clock.GetUtcNow() - EventTtl, resourceVersion) > 0)
            {
                database.ReclaimSpace();
            }

            _resourceVersion = resourceVersion;
            _oldestKept = _resourceVersion + 1;
            _deferredEvents = database;
            LoadRows(bodies);
            Database = database;
        }
    }

    /// <summary>
    /// The database whose Events are not read yet: a cluster holds many (about twenty per pod), and a command that
    /// never looks at them (status, diff, a no-op deploy) should not pay for them. The first use of the Event type
    /// reads them (the caller holds the lock).
    /// </summary>
    private ClusterDatabase? _deferredEvents;

    /// <summary>How long an Event is kept after it last happened (kube-apiserver's <c>--event-ttl</c> default).</summary>
    public static readonly TimeSpan EventTtl = TimeSpan.FromHours(1);

    /// <summary>Gives the space of deleted objects back to the file system (after the Event sweep removed some).</summary>
    internal void ReclaimSpace()
    {
        lock (_lock)
        {
            Database?.ReclaimSpace();
        }
    }

    private void EnsureEvents(ResourceType? type)
    {
        if (_deferredEvents is { } deferred && (type == EventType || type is null))
        {
            _deferredEvents = null;
            LoadRows(deferred.LoadType(TypeKey(EventType)));
        }
    }

    private void LoadRows(IEnumerable<string> bodies)
    {
        // Definitions first: the custom resources they serve are known only once they are.
        var objects = bodies.Select(b => JsonNode.Parse(b)!.AsObject()).ToLookup(o => TypeOf(o) == DefinitionType);
        Index(objects[true]);
        if (objects[true].Any())
        {
            ServeDefinitions();
        }

        Index(objects[false]);
    }

    private void Index(IEnumerable<JsonObject> objects)
    {
        foreach (var obj in objects)
        {
            if (TypeOf(obj) is { } type)
            {
                var key = Key(type, obj.Kube.Namespace, obj.Kube.Name);
                _objects[key] = obj;
                Index(key, obj);
            }
        }
    }

    private ResourceType? TypeOf(JsonObject obj) => Types.Of(obj);
}
