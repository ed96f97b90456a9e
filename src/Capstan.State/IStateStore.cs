using Capstan.Core.Diagnostics;

namespace Capstan.State;

/// <summary>A stored key with etcd's revision bookkeeping.</summary>
public sealed record StoredValue(string Key, string Value, long CreateRevision, long ModRevision, long Version, long Lease);

/// <summary>What happened to a key, as a watch reports it.</summary>
public enum WatchEventType
{
    /// <summary>The key was created or changed.</summary>
    Put,

    /// <summary>The key was deleted (or its lease expired).</summary>
    Delete,
}

/// <summary>One change seen by a watch.</summary>
public sealed record WatchEvent(WatchEventType Type, string Key, string? Value, long ModRevision);

/// <summary>A condition of a transaction: the key's mod revision equals <paramref name="ModRevision"/> (0: the key does not exist).</summary>
public sealed record StoreCompare(string Key, long ModRevision);

/// <summary>An operation of a transaction.</summary>
public abstract record StoreOp(string Key)
{
    /// <summary>Write a key, optionally attached to a lease.</summary>
    public sealed record Put(string Key, string Value, long Lease = 0) : StoreOp(Key);

    /// <summary>Delete a key.</summary>
    public sealed record Delete(string Key) : StoreOp(Key);
}

/// <summary>A compare-and-swap transaction: when every compare holds, every operation is applied atomically.</summary>
public sealed record StoreTxn(IReadOnlyList<StoreCompare> Compares, IReadOnlyList<StoreOp> Operations);

/// <summary>The outcome of a transaction and the store's revision after it.</summary>
public sealed record TxnResult(bool Succeeded, long Revision);

/// <summary>
/// The state store port: the few key-value calls Capstan needs, with etcd v3 semantics (a global revision,
/// per-key mod revisions, compare-and-swap transactions, leases, ordered watches). Keys are relative to the
/// store's prefix.
/// </summary>
public interface IStateStore : IAsyncDisposable
{
    /// <summary>The store's address for messages (<c>etcd://127.0.0.1:2379</c>, <c>file:///…</c>).</summary>
    string Address { get; }

    /// <summary>A key, or null when absent.</summary>
    Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>The keys under a prefix, sorted, with the store's current revision.</summary>
    Task<(IReadOnlyList<StoredValue> Items, long Revision)> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Runs a compare-and-swap transaction.</summary>
    Task<TxnResult> CommitAsync(StoreTxn txn, CancellationToken cancellationToken);

    /// <summary>Grants a lease that expires after <paramref name="ttl"/> unless kept alive.</summary>
    Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>Renews a lease; throws <see cref="LeaseExpiredException"/> when it has expired.</summary>
    Task KeepAliveAsync(long lease, CancellationToken cancellationToken);

    /// <summary>Revokes a lease, deleting its keys.</summary>
    Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken);

    /// <summary>Every change under a prefix from <paramref name="fromRevision"/> on, in revision order, until cancelled.</summary>
    IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken);
}

/// <summary>The store cannot be used: unreachable, corrupt, locked. The message says which and where.</summary>
public class StateStoreException : CapstanException
{
    /// <summary>What to do when the dynamic state existed and vanished (it is never re-seeded then).</summary>
    public const string VanishedAdvice = "Restore it from a backup, or set it deliberately with 'capstan state init --primary-dc DC --reason …'";

    /// <summary>Creates the exception (a failure, unless it is a conflict of writes).</summary>
    public StateStoreException(string message, Exception? inner = null, RefusalKind kind = RefusalKind.Failure)
        : base(kind, message, inner)
    {
    }
}

/// <summary>A lease is gone: it expired (or was revoked), and the keys attached to it with it.</summary>
public sealed class LeaseExpiredException(long lease, string address) : StateStoreException($"lease {lease} has expired in {address}")
{
    /// <summary>The lease.</summary>
    public long Lease { get; } = lease;
}
