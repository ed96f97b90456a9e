namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Image distribution across the simulated nodes: each node keeps the layers it has pulled; a pod's images are pulled
/// layer by layer where the node lacks them, at the node's bandwidth, with every pull in flight sharing the registry's
/// egress. Time moves when the kubelet advances it, so pulls take as long as their bytes say, on any clock.
/// </summary>
internal sealed class ImagePulls(ImageCatalog catalog, long nodeBandwidth, long? registryEgress, long defaultImageBytes)
{
    private readonly Dictionary<string, HashSet<string>> _cached = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Node, string Layer), double> _inFlight = [];
    private readonly Dictionary<(string Node, string Layer), DateTimeOffset> _done = [];
    private DateTimeOffset? _last;

    private readonly Lock _stats = new();
    private double _egressBytes;
    private double _peakEgress;
    private long _second;
    private double _secondBytes;

    /// <summary>
    /// What the registry sent since the last call (or since start): its bytes and its peak rate in bytes per second,
    /// the most it sent within one second of the clock. The counters start again at zero.
    /// </summary>
    public (long Bytes, double PeakPerSecond) TakeEgress()
    {
        lock (_stats)
        {
            var taken = ((long)Math.Round(_egressBytes), _peakEgress);
            (_egressBytes, _peakEgress, _secondBytes) = (0, 0, 0);
            return taken;
        }
    }

    /// <summary>Moves every pull in flight forward to <paramref name="now"/>, sharing the bandwidth as it goes.</summary>
    public void Advance(DateTimeOffset now)
    {
        var from = _last ?? now;
        _last = now;
        var seconds = (now - from).TotalSeconds;
        while (seconds > 1e-9 && _inFlight.Count > 0)
        {
            var rates = Rates();
            // Up to the next pull that finishes, then share again among the rest.
            var step = Math.Min(seconds, _inFlight.Min(kv => kv.Value / rates[kv.Key]));
            var sent = 0.0;
            foreach (var key in _inFlight.Keys.ToList())
            {
                var bytes = rates[key] * step;
                sent += bytes;
                _inFlight[key] -= bytes;
                if (_inFlight[key] <= 0.5)
                {
                    _inFlight.Remove(key);
                    Cache(key.Node).Add(key.Layer);
                    _done[key] = now - TimeSpan.FromSeconds(seconds - step);
                }
            }

            Count(now - TimeSpan.FromSeconds(seconds), step, sent);

            seconds -= step;
        }
    }

    /// <summary>
    /// Asks for a pod's images on its node: the layers the node lacks start pulling. Returns when the last of its
    /// layers arrived (null while any is still in flight; a time before <paramref name="now"/> when they were already
    /// there), and per image the bytes the node still lacks now (a layer two images share counts for the first) and its
    /// whole size.
    /// </summary>
    public (DateTimeOffset? ReadyAt, IReadOnlyList<(string Image, long Missing, long Size)> Images) Request(string node, IEnumerable<string> images, DateTimeOffset now)
    {
        var cache = Cache(node);
        DateTimeOffset? ready = DateTimeOffset.MinValue;
        var counted = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<(string, long, long)>();
        foreach (var image in images.Distinct(StringComparer.Ordinal))
        {
            long missing = 0, size = 0;
            foreach (var (digest, bytes) in catalog.Layers(image, defaultImageBytes).DistinctBy(l => l.Digest))
            {
                size += bytes;
                if (cache.Contains(digest))
                {
                    if (ready is { } r && _done.TryGetValue((node, digest), out var at) && at > r)
                    {
                        ready = at;
                    }

                    continue;
                }

                if (counted.Add(digest))
                {
                    missing += bytes;
                }

                _inFlight.TryAdd((node, digest), Math.Max(1, bytes));
                ready = null;
            }

            result.Add((image, missing, size));
        }

        return (ready, result);
    }

    /// <summary>Counts what the registry sent at an even rate over a step, each byte in the second of the clock it was sent in.</summary>
    private void Count(DateTimeOffset start, double step, double sent)
    {
        lock (_stats)
        {
            _egressBytes += sent;
            var at = (start.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond;
            var end = at + step;
            while (at < end)
            {
                var second = (long)Math.Floor(at);
                var until = Math.Min(end, second + 1);
                if (second != _second)
                {
                    (_second, _secondBytes) = (second, 0);
                }

                _secondBytes += sent * (until - at) / step;
                _peakEgress = Math.Max(_peakEgress, _secondBytes);
                at = until;
            }
        }
    }

    /// <summary>An image's size: its layers' compressed bytes.</summary>
    public long Size(string image) => catalog.Layers(image, defaultImageBytes).DistinctBy(l => l.Digest).Sum(l => l.Size);

    private HashSet<string> Cache(string node)
    {
        if (!_cached.TryGetValue(node, out var cache))
        {
            cache = new HashSet<string>(StringComparer.Ordinal);
            _cached[node] = cache;
        }

        return cache;
    }

    /// <summary>Each pull's rate: its node's bandwidth shared by that node's pulls, and the registry's egress shared by all.</summary>
    private Dictionary<(string Node, string Layer), double> Rates()
    {
        var perNode = _inFlight.Keys.GroupBy(k => k.Node).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var share = registryEgress is { } egress ? (double)egress / _inFlight.Count : double.MaxValue;
        return _inFlight.Keys.ToDictionary(k => k, k => Math.Min((double)nodeBandwidth / perNode[k.Node], share));
    }
}
