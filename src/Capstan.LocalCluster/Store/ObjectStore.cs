using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Capstan.LocalCluster.Store;

/// <summary>A change as a watch reports it.</summary>
public sealed record StoreEvent(string Type, ResourceType Resource, JsonObject Object, long ResourceVersion);

/// <summary>
/// The objects of the local cluster with the API server's bookkeeping: one resourceVersion counter, uid, generation,
/// creationTimestamp, optimistic concurrency, server-side apply with field ownership, deletion with finalizers, and a
/// history of changes that watches replay from a resourceVersion. Every read returns a copy.
/// </summary>
public sealed partial class ObjectStore
{
    private const int KeptEvents = 20_000;

    private readonly Lock _lock = new();

    private readonly Dictionary<(string Type, string Ns, string Name), JsonObject> _objects = [];

    /// <summary>Objects by type, then namespace, then name (ordinal): a namespace's list costs what it holds, not the cluster.</summary>
    private readonly Dictionary<string, SortedDictionary<string, SortedDictionary<string, JsonObject>>> _byType = new(StringComparer.Ordinal);

    private readonly List<StoreEvent> _history = [];

    private readonly List<(ResourceType Type, string? Ns, Channel<StoreEvent> Channel)> _watchers = [];

    private readonly TimeProvider _time;

    private long _resourceVersion = 1;

    private long _oldestKept = 1;

    /// <summary>Creates an empty store.</summary>
    public ObjectStore(TimeProvider time) => _time = time;

    /// <summary>The cluster's clock.</summary>
    public TimeProvider Clock => _time;

    /// <summary>The resources this cluster serves: the built-in ones and its established custom resources.</summary>
    public ResourceRegistry Types { get; } = new();

    /// <summary>Where every committed change is written before it is acknowledged (null: memory only).</summary>
    internal ClusterDatabase? Database { get; set; }

    /// <summary>Raised after every change, outside the store's lock (controllers wake up on it).</summary>
    public event Action? Changed;

    /// <summary>The current resourceVersion.</summary>
    public long ResourceVersion
    {
        get
        {
            lock (_lock)
            {
                return _resourceVersion;
            }
        }
    }

    /// <summary>Wakes the controllers without a change (a simulated input changed, such as an autoscaler's metric).</summary>
    public void Touch() => Changed?.Invoke();

    /// <summary>Wakes the controllers after a write, except for Events, which no controller acts on.</summary>
    private void Wake(ResourceType type)
    {
        if (!type.Is("Event"))
        {
            Changed?.Invoke();
        }
    }

    /// <summary>An object, or null.</summary>
    public JsonObject? Get(ResourceType type, string? ns, string name)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            return _objects.TryGetValue(Key(type, ns, name), out var obj) ? (JsonObject)obj.DeepClone() : null;
        }
    }

    /// <summary>An object itself, not a copy (see <see cref="ListShared"/>); callers must not modify it.</summary>
    internal JsonObject? GetShared(ResourceType type, string? ns, string name)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            return _objects.GetValueOrDefault(Key(type, ns, name));
        }
    }

    /// <summary>Objects of a type (in a namespace, or all), filtered, sorted by namespace and name.</summary>
    public (List<JsonObject> Items, long ResourceVersion) List(ResourceType type, string? ns, LabelQuery? labels = null, Func<JsonObject, bool>? filter = null)
    {
        var (shared, rv) = ListShared(type, ns, labels, filter);
        return ([.. shared.Select(o => (JsonObject)o.DeepClone())], rv);
    }

    /// <summary>
    /// Like <see cref="List"/>, but the stored objects themselves, not copies: stored objects are replaced on every
    /// write and never changed in place, so readers may share them as long as they do not modify them.
    /// </summary>
    internal (List<JsonObject> Items, long ResourceVersion) ListShared(ResourceType type, string? ns, LabelQuery? labels = null, Func<JsonObject, bool>? filter = null)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            if (!_byType.TryGetValue(TypeKey(type), out var objects))
            {
                return ([], _resourceVersion);
            }

            IEnumerable<SortedDictionary<string, JsonObject>> namespaces = ns is null ? objects.Values
                : objects.TryGetValue(ns, out var inNamespace) ? [inNamespace] : [];
            var items = namespaces
                .SelectMany(n => n.Values)
                .Where(o => (labels?.Matches(o) ?? true) && (filter?.Invoke(o) ?? true))
                .ToList();
            return (items, _resourceVersion);
        }
    }

    /// <summary>Creates an object; 409 when it exists, 404 when its namespace does not. A dry run stores nothing and answers what it would have stored.</summary>
    public JsonObject Create(ResourceType type, string? ns, JsonObject obj, string manager = "unknown", bool dryRun = false)
    {
        var name = Validate(type, ns, obj);
        lock (_lock)
        {
            EnsureEvents(type);
            RequireNamespace(type, ns);
            if (_objects.ContainsKey(Key(type, ns, name)))
            {
                throw ApiError.AlreadyExists(type, name);
            }

            var created = Prepare(type, ns, obj);
            FieldOwnership.Write(created, [(manager, "Update", FieldOwnership.Paths(created, includeStatus: false))], type.ApiVersion, Now());
            if (dryRun)
            {
                return created;
            }

            Commit(type, ns, name, created, "ADDED");
        }

        return Notify(type, ns, name);
    }

    /// <summary>
    /// Records an Event the way a component's event broadcaster does, without the admission and field-ownership work of
    /// a client's write (an Event is built by the server's own components, always valid, and never applied): created
    /// when new, or its count and lastTimestamp replaced when the same thing happened again. Events wake no controller.
    /// </summary>
    internal void RecordEvent(string ns, string name, Func<JsonObject?, JsonObject> next, string manager)
    {
        var type = EventType;
        lock (_lock)
        {
            EnsureEvents(EventType);
            if (!type.Namespaced || !_objects.ContainsKey(Key(ResourceTypes.ByKind("Namespace")!, null, ns)))
            {
                return;
            }

            var live = _objects.GetValueOrDefault(Key(type, ns, name));
            var obj = next(live);
            var meta = (JsonObject)obj["metadata"]!;
            meta["name"] = name;
            meta["namespace"] = ns;
            meta["uid"] = live?["metadata"]?["uid"]?.DeepClone() ?? Guid.NewGuid().ToString();
            meta["creationTimestamp"] = live?["metadata"]?["creationTimestamp"]?.DeepClone() ?? Now();
            meta["managedFields"] = new JsonArray(new JsonObject
            {
                ["manager"] = manager,
                ["operation"] = "Update",
                ["apiVersion"] = "v1",
                ["time"] = Now(),
                ["fieldsType"] = "FieldsV1",
                ["fieldsV1"] = EventFields.DeepClone(),
            });
            Commit(type, ns, name, obj, live is null ? "ADDED" : "MODIFIED");
        }
    }

    private static readonly ResourceType EventType = ResourceTypes.ByKind("Event")!;

    /// <summary>The fields every recorded Event sets, as its managedFields list them.</summary>
    private static readonly JsonObject EventFields = new()
    {
        ["f:count"] = new JsonObject(), ["f:firstTimestamp"] = new JsonObject(), ["f:involvedObject"] = new JsonObject(),
        ["f:lastTimestamp"] = new JsonObject(), ["f:message"] = new JsonObject(), ["f:reason"] = new JsonObject(),
        ["f:reportingComponent"] = new JsonObject(), ["f:reportingInstance"] = new JsonObject(), ["f:source"] = new JsonObject(),
        ["f:type"] = new JsonObject(),
    };

    /// <summary>
    /// Replaces an object (PUT). A stale <c>metadata.resourceVersion</c> is a 409; the main resource ignores status
    /// and the status subresource ignores everything but status, as the real server does.
    /// </summary>
    public JsonObject Update(ResourceType type, string? ns, string name, JsonObject obj, bool statusOnly, string manager = "unknown", bool dryRun = false)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            var live = _objects.GetValueOrDefault(Key(type, ns, name)) ?? throw ApiError.NotFound(type, name);
            if (obj["metadata"]?["resourceVersion"]?.GetValue<string>() is { Length: > 0 } rv && rv != Rv(live))
            {
                throw ApiError.Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");
            }

            JsonObject next;
            if (statusOnly)
            {
                next = (JsonObject)live.DeepClone();
                next["status"] = obj["status"]?.DeepClone();
                if (type.Custom is not null)
                {
                    // A custom resource's status is pruned and validated by its schema too.
                    Admission.Admit(type, next, live);
                }
            }
            else
            {
                Validate(type, ns, obj);
                next = (JsonObject)obj.DeepClone();
                CopySystemMetadata(live, next);
                if (type.HasStatus)
                {
                    next["status"] = live["status"]?.DeepClone();
                }

                Admission.Admit(type, next, live);

                var owners = FieldOwnership.Read(live);
                var changed = FieldOwnership.Paths(next, false).Where(p => !FieldOwnership.SameValue(live, next, p)).ToHashSet(StringComparer.Ordinal);
                owners = [.. owners.Select(o => (o.Manager, o.Operation, new HashSet<string>(o.Paths.Except(changed).Where(p => FieldOwnership.Get(next, p) is not null), StringComparer.Ordinal)))];
                var mine = owners.FindIndex(o => o.Manager == manager && o.Operation == "Update");
                if (mine < 0)
                {
                    owners.Add((manager, "Update", changed));
                }
                else
                {
                    owners[mine].Paths.UnionWith(changed);
                }

                FieldOwnership.Write(next, owners, type.ApiVersion, Now());
            }

            BumpGeneration(type, live, next);
            if (dryRun)
            {
                return next;
            }

            if (CommitChange(type, ns, name, live, next))
            {
                Wake(type);
                return next;
            }
        }

        return Notify(type, ns, name);
    }

    /// <summary>Stores a changed object; true when the change removed its last finalizer and it is gone.</summary>
    private bool CommitChange(ResourceType type, string? ns, string name, JsonObject live, JsonObject next)
    {
        if (live["metadata"]?["deletionTimestamp"] is not null
            && (next["metadata"]?["finalizers"] as JsonArray ?? []).Any(f => !(live["metadata"]?["finalizers"] as JsonArray ?? []).Any(l => JsonNode.DeepEquals(l, f))))
        {
            throw ApiError.Invalid(type, name, ("metadata.finalizers", "Forbidden: no new finalizers can be added if the object is being deleted"));
        }

        if (SameButBookkeeping(live, next))
        {
            return false;
        }

        Commit(type, ns, name, next, "MODIFIED");
        if (!FinalizedNow(type, live, next))
        {
            return false;
        }

        var key = Key(type, ns, name);
        _objects.Remove(key);
        Unindex(key);
        Record("DELETED", type, next);
        return true;
    }

    /// <summary>A JSON merge patch (RFC 7386): mappings merge, lists are replaced, null removes.</summary>
    public JsonObject MergePatch(ResourceType type, string? ns, string name, JsonObject patch, bool statusOnly, string manager = "unknown", bool dryRun = false) =>
        Patch(type, ns, name, next => ApplyMergePatch(next, patch), statusOnly, manager, dryRun);

    /// <summary>A strategic merge patch: lists merge by the key the schema gives them (see <see cref="StrategicMergePatch"/>).</summary>
    public JsonObject StrategicPatch(ResourceType type, string? ns, string name, JsonObject patch, bool statusOnly, string manager = "unknown", bool dryRun = false) =>
        Patch(type, ns, name, next => StrategicMergePatch.Apply(type.Kind, next, patch), statusOnly, manager, dryRun);

    /// <summary>A JSON patch (RFC 6902).</summary>
    public JsonObject JsonPatch(ResourceType type, string? ns, string name, JsonArray operations, bool statusOnly, string manager = "unknown", bool dryRun = false) =>
        Patch(type, ns, name, next => Store.JsonPatch.Apply(type, name, next, operations), statusOnly, manager, dryRun);

    /// <summary>
    /// Applies a patch to the live object and stores the result. As kube-apiserver's update loop does, a patch that
    /// names no resourceVersion of its own is applied again to the newer object when another write came in between
    /// (a controller's status update, say): only a patch that names a stale version gets the 409.
    /// </summary>
    private JsonObject Patch(ResourceType type, string? ns, string name, Action<JsonObject> patch, bool statusOnly, string manager, bool dryRun)
    {
        for (var attempt = 0; ; attempt++)
        {
            JsonObject next;
            string? versionRead;
            lock (_lock)
            {
                EnsureEvents(type);
                var live = _objects.GetValueOrDefault(Key(type, ns, name)) ?? throw ApiError.NotFound(type, name);
                versionRead = Rv(live);
                next = (JsonObject)live.DeepClone();
                patch(next);
            }

            var namesVersion = next["metadata"]?["resourceVersion"]?.GetValue<string>() != versionRead;
            try
            {
                return Update(type, ns, name, next, statusOnly, manager, dryRun);
            }
            catch (ApiError error) when (error.Code == 409 && !namesVersion && attempt < 16)
            {
                // Someone wrote in between: read again and re-apply the patch.
            }
        }
    }

    /// <summary>
    /// Every object with its type, not copied: stored objects are replaced on every write, never changed in place, so
    /// readers may share them as long as they do not modify them (the garbage collector only reads).
    /// </summary>
    internal List<(ResourceType Type, JsonObject Object)> All(bool withDeferredEvents = false)
    {
        lock (_lock)
        {
            if (withDeferredEvents)
            {
                EnsureEvents(null);
            }

            // Objects of a custom resource no longer served (its definition gone, not yet cleaned up) are left out.
            return [.. _objects.Select(kv => (Type: Types.ByKey(kv.Key.Type), Object: kv.Value)).Where(o => o.Type is not null).Select(o => (o.Type!, o.Object))];
        }
    }

    private JsonObject Notify(ResourceType type, string? ns, string name)
    {
        Wake(type);
        return Get(type, ns, name) ?? throw ApiError.NotFound(type, name);
    }

    private void Commit(ResourceType type, string? ns, string name, JsonObject obj, string eventType)
    {
        if (type.Is("Service") && eventType != "DELETED")
        {
            ServiceAddresses.Allocate(type, obj, _objects.Where(kv => kv.Key.Type == TypeKey(type) && kv.Key != Key(type, ns, name)).Select(kv => kv.Value));
        }

        _resourceVersion++;
        obj["metadata"]!["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture);
        var key = Key(type, ns, name);
        Database?.Put(key.Item1, key.Item2, key.Item3, _resourceVersion, obj);
        _objects[key] = obj;
        Index(key, obj);
        Record(eventType, type, obj);
    }

    private void Index((string Type, string Ns, string Name) key, JsonObject obj)
    {
        if (!_byType.TryGetValue(key.Type, out var objects))
        {
            objects = new SortedDictionary<string, SortedDictionary<string, JsonObject>>(StringComparer.Ordinal);
            _byType[key.Type] = objects;
        }

        if (!objects.TryGetValue(key.Ns, out var inNamespace))
        {
            inNamespace = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
            objects[key.Ns] = inNamespace;
        }

        inNamespace[key.Name] = obj;
    }

    private void Unindex((string Type, string Ns, string Name) key)
    {
        if (_byType.TryGetValue(key.Type, out var objects) && objects.TryGetValue(key.Ns, out var inNamespace))
        {
            inNamespace.Remove(key.Name);
            if (inNamespace.Count == 0)
            {
                objects.Remove(key.Ns);
            }
        }
    }

    private static void ApplyMergePatch(JsonObject target, JsonObject patch)
    {
        foreach (var (key, value) in patch)
        {
            if (value is null)
            {
                target.Remove(key);
            }
            else if (value is JsonObject child && target[key] is JsonObject existing)
            {
                ApplyMergePatch(existing, child);
            }
            else
            {
                target[key] = value.DeepClone();
            }
        }
    }

    private string Now() => Stamp(_time.GetUtcNow());

    private static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Rv(JsonObject obj) => obj["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty;

    private static string TypeKey(ResourceType type) => type.ApiVersion + "/" + type.Plural;

    private static (string, string, string) Key(ResourceType type, string? ns, string name) => (TypeKey(type), type.Namespaced ? ns ?? string.Empty : string.Empty, name);
}
