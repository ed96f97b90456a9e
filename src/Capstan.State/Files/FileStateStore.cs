using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Capstan.Core.Security;

namespace Capstan.State.Files;

/// <summary>
/// The embedded state store: etcd's semantics (a global revision, compare-and-swap, leases, ordered watches) on one
/// JSON file in a directory. Writers take an exclusive lock file and replace the data file by an atomic rename, so two
/// processes never lose an update and readers never see half a file. Recent changes are kept in the file so that a
/// watcher can replay every change in order.
/// </summary>
public sealed class FileStateStore : IStateStore
{
    private const string DataFile = "store.json";
    private const string LockFile = "store.lock";
    private const int KeptEvents = 2000;

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly string _directory;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lockTimeout;
    private readonly TimeSpan _pollInterval;

    /// <summary>Creates a store in <paramref name="directory"/> (created on the first write).</summary>
    public FileStateStore(string directory, TimeProvider? time = null, TimeSpan? lockTimeout = null, TimeSpan? pollInterval = null)
    {
        _directory = Path.GetFullPath(directory);
        _time = time ?? TimeProvider.System;
        _lockTimeout = lockTimeout ?? TimeSpan.FromSeconds(10);
        _pollInterval = pollInterval ?? TimeSpan.FromMilliseconds(50);
        Address = "file://" + _directory;
    }

    /// <inheritdoc/>
    public string Address { get; }

    private sealed class Data
    {
        public long Revision { get; set; }

        public long NextLease { get; set; } = 1;

        public SortedDictionary<string, Entry> Keys { get; set; } = new(StringComparer.Ordinal);

        public Dictionary<long, LeaseRecord> Leases { get; set; } = [];

        public List<EventRecord> Events { get; set; } = [];

        public long FirstKeptRevision { get; set; } = 1;
    }

    private sealed record LeaseRecord(long ExpiresMs, long TtlMs);

    private sealed record Entry(string Value, long Create, long Mod, long Version, long Lease);

    private sealed record EventRecord(long Revision, bool Delete, string Key, string? Value);

    /// <inheritdoc/>
    public Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var data = Expire(Read());
        return Task.FromResult(data.Keys.TryGetValue(key, out var e) ? ToStored(key, e) : null);
    }

    /// <inheritdoc/>
    public Task<(IReadOnlyList<StoredValue> Items, long Revision)> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var data = Expire(Read());
        IReadOnlyList<StoredValue> items = [.. data.Keys.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => ToStored(kv.Key, kv.Value))];
        return Task.FromResult((items, data.Revision));
    }

    /// <inheritdoc/>
    public async Task<TxnResult> CommitAsync(StoreTxn txn, CancellationToken cancellationToken) =>
        await WriteAsync(data =>
        {
            foreach (var compare in txn.Compares)
            {
                var mod = data.Keys.TryGetValue(compare.Key, out var e) ? e.Mod : 0;
                if (mod != compare.ModRevision)
                {
                    return new TxnResult(false, data.Revision);
                }
            }

            if (txn.Operations.Count == 0)
            {
                return new TxnResult(true, data.Revision);
            }

            var revision = data.Revision + 1;
            foreach (var op in txn.Operations)
            {
                switch (op)
                {
                    case StoreOp.Put put:
                        if (put.Lease != 0 && !data.Leases.ContainsKey(put.Lease))
                        {
                            throw new StateStoreException($"lease {put.Lease} does not exist in {Address}");
                        }

                        var old = data.Keys.GetValueOrDefault(put.Key);
                        data.Keys[put.Key] = new Entry(put.Value, old?.Create ?? revision, revision, (old?.Version ?? 0) + 1, put.Lease);
                        data.Events.Add(new EventRecord(revision, false, put.Key, put.Value));
                        break;
                    case StoreOp.Delete delete when data.Keys.Remove(delete.Key):
                        data.Events.Add(new EventRecord(revision, true, delete.Key, null));
                        break;
                }
            }

            data.Revision = revision;
            return new TxnResult(true, revision);
        }, cancellationToken);

    /// <inheritdoc/>
    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken) =>
        WriteAsync(data =>
        {
            var id = data.NextLease++;
            var ttlMs = (long)Math.Max(1000, ttl.TotalMilliseconds);
            data.Leases[id] = new LeaseRecord(_time.GetUtcNow().ToUnixTimeMilliseconds() + ttlMs, ttlMs);
            return id;
        }, cancellationToken);

    /// <inheritdoc/>
    public Task KeepAliveAsync(long lease, CancellationToken cancellationToken) =>
        WriteAsync(data =>
        {
            if (!data.Leases.TryGetValue(lease, out var record))
            {
                throw new LeaseExpiredException(lease, Address);
            }

            data.Leases[lease] = record with { ExpiresMs = _time.GetUtcNow().ToUnixTimeMilliseconds() + record.TtlMs };
            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken) =>
        WriteAsync(data =>
        {
            if (data.Leases.Remove(lease))
            {
                DeleteLeaseKeys(data, [lease]);
            }

            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var next = fromRevision;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var data = Read();
            if (next < data.FirstKeptRevision)
            {
                throw new StateStoreException($"watch on {Address}: revision {next} is no longer kept (oldest kept: {data.FirstKeptRevision})");
            }

            foreach (var e in data.Events)
            {
                if (e.Revision >= next && e.Key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    yield return new WatchEvent(e.Delete ? WatchEventType.Delete : WatchEventType.Put, e.Key, e.Value, e.Revision);
                }
            }

            next = Math.Max(next, data.Revision + 1);
            await Task.Delay(_pollInterval, _time, cancellationToken);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private Data Read()
    {
        var path = Path.Combine(_directory, DataFile);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (FileNotFoundException)
        {
            return new Data();
        }
        catch (DirectoryNotFoundException)
        {
            return new Data();
        }

        try
        {
            return JsonSerializer.Deserialize<Data>(text, Json) ?? throw new JsonException("empty document");
        }
        catch (JsonException ex)
        {
            throw new StateStoreException($"the state store file {path} is corrupt ({ex.Message}); nothing was read or written", ex);
        }
    }

    private Data Expire(Data data)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var expired = data.Leases.Where(kv => kv.Value.ExpiresMs <= now).Select(kv => kv.Key).ToHashSet();
        if (expired.Count > 0)
        {
            foreach (var key in data.Keys.Where(kv => expired.Contains(kv.Value.Lease)).Select(kv => kv.Key).ToList())
            {
                data.Keys.Remove(key);
            }
        }

        return data;
    }

    private void DeleteLeaseKeys(Data data, HashSet<long> leases)
    {
        var revision = data.Revision + 1;
        var removed = false;
        foreach (var key in data.Keys.Where(kv => leases.Contains(kv.Value.Lease)).Select(kv => kv.Key).ToList())
        {
            data.Keys.Remove(key);
            data.Events.Add(new EventRecord(revision, true, key, null));
            removed = true;
        }

        if (removed)
        {
            data.Revision = revision;
        }
    }

    private async Task<T> WriteAsync<T>(Func<Data, T> change, CancellationToken cancellationToken)
    {
        PrivateFiles.Directory(_directory);
        using var lockHandle = await AcquireLockAsync(cancellationToken);
        var data = Read();

        // Leases that ran out are revoked by the next writer, with delete events, as etcd's lessor does.
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var expired = data.Leases.Where(kv => kv.Value.ExpiresMs <= now).Select(kv => kv.Key).ToHashSet();
        foreach (var lease in expired)
        {
            data.Leases.Remove(lease);
        }

        if (expired.Count > 0)
        {
            DeleteLeaseKeys(data, expired);
        }

        var result = change(data);
        if (data.Events.Count > KeptEvents)
        {
            data.Events.RemoveRange(0, data.Events.Count - KeptEvents);
            data.FirstKeptRevision = data.Events[0].Revision + 1;
        }

        var path = Path.Combine(_directory, DataFile);
        var temp = path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using (var stream = new FileStream(temp, PrivateFiles.Options(FileMode.Create, FileAccess.Write)))
        {
            await JsonSerializer.SerializeAsync(stream, data, Json, cancellationToken);
        }

        File.Move(temp, path, overwrite: true);
        return result;
    }

    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(_directory, LockFile);
        var deadline = _time.GetUtcNow() + _lockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, PrivateFiles.Options(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (_time.GetUtcNow() < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken);
            }
            catch (IOException ex)
            {
                throw new StateStoreException($"the state store {_directory} stayed locked by another process for {_lockTimeout.TotalSeconds:0} s", ex);
            }
        }
    }

    private static StoredValue ToStored(string key, Entry e) => new(key, e.Value, e.Create, e.Mod, e.Version, e.Lease);
}
