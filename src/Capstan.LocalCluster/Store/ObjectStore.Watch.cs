using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <content>The change history and the watches that replay and follow it.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// The changes committed after <paramref name="resourceVersion"/>, oldest first, as the stored objects themselves
    /// (not copies: callers must not modify them); <c>Complete</c> is false when the history no longer reaches back
    /// that far, and the caller has to look at everything.
    /// </summary>
    internal (List<StoreEvent> Events, bool Complete) ChangesSince(long resourceVersion)
    {
        lock (_lock)
        {
            if (resourceVersion < _oldestKept - 1)
            {
                return ([], false);
            }

            var low = 0;
            var high = _history.Count;
            while (low < high)
            {
                var mid = (low + high) / 2;
                if (_history[mid].ResourceVersion <= resourceVersion)
                {
                    low = mid + 1;
                }
                else
                {
                    high = mid;
                }
            }

            return (_history.GetRange(low, _history.Count - low), true);
        }
    }

    /// <summary>
    /// Subscribes to changes of a type from <paramref name="fromResourceVersion"/> on (0: the current objects as ADDED
    /// first). A version older than the kept history is 410 Gone, as on a real server.
    /// </summary>
    public ChannelReader<StoreEvent> Watch(ResourceType type, string? ns, long fromResourceVersion, CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<StoreEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_lock)
        {
            EnsureEvents(type);
            if (fromResourceVersion <= 0)
            {
                foreach (var kv in _objects.Where(kv => kv.Key.Type == TypeKey(type) && (ns is null || kv.Key.Ns == ns)).OrderBy(kv => kv.Key.Name, StringComparer.Ordinal))
                {
                    channel.Writer.TryWrite(new StoreEvent("ADDED", type, (JsonObject)kv.Value.DeepClone(), _resourceVersion));
                }
            }
            else
            {
                if (fromResourceVersion < _oldestKept - 1)
                {
                    throw new ApiError(410, "Expired", $"too old resource version: {fromResourceVersion} ({_oldestKept})");
                }

                foreach (var e in _history.Where(e => e.ResourceVersion > fromResourceVersion && e.Resource == type && Matches(e, ns)))
                {
                    channel.Writer.TryWrite(e with { Object = (JsonObject)e.Object.DeepClone() });
                }
            }

            var entry = (type, ns, channel);
            _watchers.Add(entry);
            cancellationToken.Register(() =>
            {
                lock (_lock)
                {
                    _watchers.Remove(entry);
                }

                channel.Writer.TryComplete();
            });
        }

        return channel.Reader;
    }

    private void Record(string eventType, ResourceType type, JsonObject obj)
    {
        if (eventType == "DELETED")
        {
            _resourceVersion++;
            obj = (JsonObject)obj.DeepClone();
            obj["metadata"]!["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture);
            var key = Key(type, obj.Kube.Namespace, obj.Kube.Name);
            Database?.Delete(key.Item1, key.Item2, key.Item3, _resourceVersion);
        }

        if (type == DefinitionType)
        {
            ServeDefinitions();
        }

        var e = new StoreEvent(eventType, type, obj, _resourceVersion);
        _history.Add(e);
        if (_history.Count > KeptEvents)
        {
            _history.RemoveRange(0, _history.Count - KeptEvents);
            _oldestKept = _history[0].ResourceVersion;
        }

        foreach (var (watchType, watchNs, channel) in _watchers)
        {
            if (watchType == type && Matches(e, watchNs))
            {
                channel.Writer.TryWrite(e with { Object = (JsonObject)obj.DeepClone() });
            }
        }
    }

    private static readonly ResourceType DefinitionType = ResourceTypes.ByKind("CustomResourceDefinition")!;

    /// <summary>Serves the custom resources of the established definitions (the caller holds the lock).</summary>
    private void ServeDefinitions() =>
        Types.SetCustom(_byType.TryGetValue(TypeKey(DefinitionType), out var definitions)
            ? definitions.Values.SelectMany(n => n.Values).Select(CustomResource.Served).OfType<ResourceType>()
            : []);

    private static bool Matches(StoreEvent e, string? ns) => ns is null || e.Object.Kube.Namespace == ns;
}
