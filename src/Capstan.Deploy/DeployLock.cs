using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>Who holds the deploy lock.</summary>
public sealed record LockHolder(string Actor, string Host, int Pid, DateTimeOffset Since, string Reason, bool Manual, string? Token = null)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Actor} ({(Manual ? "operator lock" : $"pid {Pid.ToString(CultureInfo.InvariantCulture)} on {Host}")}) since {Since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z: {Reason}";
}

/// <summary>What <see cref="DeployLock.UnlockAsync"/> removed: a holder, or (forced) a value that named none.</summary>
public sealed record RemovedLock(LockHolder? Holder);

/// <summary>The deploy lock is held by someone else.</summary>
public sealed class DeployLockedException(LockHolder holder) : CapstanException(RefusalKind.Locked, $"deploys are locked by {holder}")
{
    /// <summary>The holder.</summary>
    public LockHolder Holder { get; } = holder;
}

/// <summary>
/// One deploy at a time per farm: a key in the state store attached to a lease that the deploying process keeps alive,
/// so a crashed deploy releases the lock when its lease runs out (or at once, when the next deploy on the same host
/// sees that the holder's process is gone). Operators can take a lease-less lock with <c>capstan lock</c>.
/// </summary>
public sealed class DeployLock : IAsyncDisposable
{
    /// <summary>The lease of a deploy lock, kept alive every third of it.</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(15);

    private readonly TimeSpan _ttl;
    private readonly CancellationTokenSource _lost = new();

    private readonly IStateStore _store;
    private readonly string _key;
    private readonly long _lease;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _keepAlive;

    private DeployLock(IStateStore store, string key, long lease, TimeSpan ttl, TimeProvider time, bool borrowed = false)
    {
        _store = store;
        _key = key;
        _lease = lease;
        _ttl = ttl;
        _time = time;
        _keepAlive = borrowed ? null : Task.Run(KeepAliveAsync);
    }

    /// <summary>The state store key of a farm's lock.</summary>
    public static string Key(string project) => $"{project}/deploy-lock";

    /// <summary>
    /// Takes the lock for a deploy; throws <see cref="DeployLockedException"/> naming the holder. With
    /// <paramref name="heldToken"/>, an operator lock carrying that token counts as ours and is left as it is.
    /// </summary>
    public static async Task<DeployLock> AcquireAsync(IStateStore store, string project, string actor, string reason, CancellationToken cancellationToken, string? heldToken = null, TimeSpan? ttl = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        FreeText.Check("the reason", reason);
        FreeText.Check("the actor", actor);
        var key = Key(project);
        if (heldToken is not null)
        {
            var current = await store.GetAsync(key, cancellationToken);
            var held = current is null ? null : Parse(key, current.Value);
            return held?.Token == heldToken
                ? new DeployLock(store, key, 0, ttl ?? DefaultTtl, time, borrowed: true)
                : throw new DeployLockedException(held ?? new LockHolder("nobody", Environment.MachineName, 0, time.GetUtcNow(), $"the lock {heldToken} this deploy runs under is gone", true));
        }

        var lease = await store.GrantLeaseAsync(ttl ?? DefaultTtl, cancellationToken);
        var holder = new LockHolder(actor, Environment.MachineName, Environment.ProcessId, time.GetUtcNow(), reason, false);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var current = await store.GetAsync(key, cancellationToken);
            if (current is not null)
            {
                var held = Parse(key, current.Value);
                if (!Abandoned(held))
                {
                    await store.RevokeLeaseAsync(lease, cancellationToken);
                    throw new DeployLockedException(held);
                }
            }

            // Free, or held by a process of this host that is gone: take it over with compare-and-swap.
            var result = await store.CommitAsync(new StoreTxn([new StoreCompare(key, current?.ModRevision ?? 0)], [new StoreOp.Put(key, Write(holder), lease)]), cancellationToken);
            if (result.Succeeded)
            {
                return new DeployLock(store, key, lease, ttl ?? DefaultTtl, time);
            }
        }

        await store.RevokeLeaseAsync(lease, cancellationToken);
        var now = await store.GetAsync(key, cancellationToken);
        throw new DeployLockedException(now is null ? holder : Parse(key, now.Value));
    }

    /// <summary>The current holder, or null.</summary>
    public static async Task<LockHolder?> HolderAsync(IStateStore store, string project, CancellationToken cancellationToken) =>
        await store.GetAsync(Key(project), cancellationToken) is { } v ? Parse(Key(project), v.Value) : null;

    /// <summary>
    /// An operator lock: no lease, stays until <see cref="UnlockAsync"/>. A <paramref name="token"/> lets deploys that
    /// pass the same token run under it. A value there that cannot be read is replaced only with <paramref name="force"/>.
    /// </summary>
    public static async Task LockAsync(IStateStore store, string project, string actor, string reason, CancellationToken cancellationToken, string? token = null, bool force = false, TimeProvider? time = null)
    {
        FreeText.Check("the reason", reason);
        FreeText.Check("the actor", actor);
        var key = Key(project);
        var holder = new LockHolder(actor, Environment.MachineName, Environment.ProcessId, (time ?? TimeProvider.System).GetUtcNow(), reason, true, token);
        var current = await store.GetAsync(key, cancellationToken);
        if (current is not null)
        {
            try
            {
                throw new DeployLockedException(Parse(key, current.Value));
            }
            catch (DeployLockCorruptException) when (force)
            {
                // Told to: the unreadable value is replaced, if it is still the one read.
            }
        }

        var result = await store.CommitAsync(new StoreTxn([new StoreCompare(key, current?.ModRevision ?? 0)], [new StoreOp.Put(key, Write(holder))]), cancellationToken);
        if (!result.Succeeded && await HolderAsync(store, project, cancellationToken) is { } held)
        {
            throw new DeployLockedException(held);
        }
    }

    /// <summary>
    /// Removes the lock, whoever holds it; returns what it removed (null when there was no lock). A value that cannot be
    /// read is removed only with <paramref name="force"/> (the result then names no holder).
    /// </summary>
    public static async Task<RemovedLock?> UnlockAsync(IStateStore store, string project, CancellationToken cancellationToken, bool force = false)
    {
        var key = Key(project);
        var current = await store.GetAsync(key, cancellationToken);
        if (current is null)
        {
            return null;
        }

        LockHolder? holder = null;
        try
        {
            holder = Parse(key, current.Value);
        }
        catch (DeployLockCorruptException) when (force)
        {
        }

        await store.CommitAsync(new StoreTxn([new StoreCompare(key, current.ModRevision)], [new StoreOp.Delete(key)]), cancellationToken);
        return new RemovedLock(holder);
    }

    /// <summary>
    /// Removes the lock when its holder is a deploy (not an operator lock) of this host whose process is gone, as the
    /// next deploy here would take it over: a deploy killed after its last write leaves nothing for a no-op run to do,
    /// and the lock would otherwise stay until its lease ran out. Returns the holder it removed, or null.
    /// </summary>
    public static async Task<LockHolder?> ReleaseAbandonedAsync(IStateStore store, string project, CancellationToken cancellationToken)
    {
        var key = Key(project);
        if (await store.GetAsync(key, cancellationToken) is not { } current)
        {
            return null;
        }

        LockHolder held;
        try
        {
            held = Parse(key, current.Value);
        }
        catch (DeployLockCorruptException)
        {
            // Not ours to judge: the next deploy says what is wrong with it.
            return null;
        }

        if (!Abandoned(held))
        {
            return null;
        }

        var result = await store.CommitAsync(new StoreTxn([new StoreCompare(key, current.ModRevision)], [new StoreOp.Delete(key)]), cancellationToken);
        return result.Succeeded ? held : null;
    }

    /// <summary>
    /// Cancelled when the lock is lost: the lease expired, or no keep-alive succeeded for two thirds of the TTL (soon
    /// after which the store may let it expire and give the lock to someone else). Whoever writes under the lock stops then.
    /// </summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Why the lock was lost; null while it is held.</summary>
    public string? LostReason { get; private set; }

    private async Task KeepAliveAsync()
    {
        // Timed from when the last successful keep-alive was sent: the server's lease runs from no later than that.
        var lastBeat = _time.GetTimestamp();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_ttl / 3, _time, _stop.Token);
                var sent = _time.GetTimestamp();
                using var timeout = new CancellationTokenSource(_ttl / 6, _time);
                using var beat = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, timeout.Token);
                await _store.KeepAliveAsync(_lease, beat.Token);
                lastBeat = sent;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is StateStoreException or OperationCanceledException)
            {
                // The store did not answer in time, or refused: the next beat tries again, unless the lease is gone
                // or has gone unrenewed for as long as it lives.
                // Declared lost with a margin (two thirds of the lease), before the store can hand the lock to anyone else.
                var silent = _time.GetElapsedTime(lastBeat);
                var expired = ex is LeaseExpiredException;
                if (expired || silent >= _ttl * 2 / 3)
                {
                    LostReason = $"the deploy lock was lost: {(expired ? ex.Message : $"no keep-alive succeeded for {silent.TotalSeconds:0} s (the lease lives {_ttl.TotalSeconds:0} s; last error: {ex.Message})")}";
                    await _lost.CancelAsync();
                    return;
                }
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_keepAlive is null)
        {
            _stop.Dispose();
            _lost.Dispose();
            return;
        }

        await _stop.CancelAsync();
        await _keepAlive;
        try
        {
            await _store.RevokeLeaseAsync(_lease, CancellationToken.None);
        }
        catch (StateStoreException)
        {
            // The lease expires by itself.
        }

        _stop.Dispose();
        _lost.Dispose();
    }

    /// <summary>A deploy's lock (not an operator's) of this host whose process is gone: the next deploy here may take it.</summary>
    private static bool Abandoned(LockHolder held) => !held.Manual && held.Host == Environment.MachineName && !ProcessAlive(held.Pid);

    private static bool ProcessAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string Write(LockHolder h) => System.Text.Json.JsonSerializer.Serialize(h, Json.CapstanJsonContext.Plain.LockHolder);

    /// <summary>The holder a lock value names; a value that is not a lock Capstan wrote is a <see cref="DeployLockCorruptException"/>.</summary>
    private static LockHolder Parse(string key, string json)
    {
        try
        {
            var node = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("it is not a JSON object");
            return new LockHolder(
                node["actor"]?.GetValue<string>() ?? throw new FormatException("it names no actor"),
                node["host"]?.GetValue<string>() ?? "unknown",
                node["pid"]?.GetValue<int>() ?? 0,
                DateTimeOffset.Parse(node["since"]?.GetValue<string>() ?? "2000-01-01T00:00:00Z", CultureInfo.InvariantCulture),
                node["reason"]?.GetValue<string>() ?? string.Empty,
                node["manual"]?.GetValue<bool>() ?? false,
                node["token"]?.GetValue<string>());
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            throw new DeployLockCorruptException(key, json, ex is FormatException ? ex.Message : "it is not a lock Capstan wrote: " + ex.Message.Split('.')[0]);
        }
    }
}

/// <summary>
/// The deploy lock's key holds a value Capstan cannot read (written by hand, or by another tool): nobody can tell who
/// holds it, so nothing overwrites it unless forced.
/// </summary>
public sealed class DeployLockCorruptException(string key, string value, string why)
    : CapstanException(RefusalKind.Failure, $"the deploy lock at {key} holds a value Capstan cannot read ({why}): {Preview(value)}; 'capstan unlock --force --reason WHY' removes it, or put a valid lock back by hand")
{
    /// <summary>The state store key of the lock.</summary>
    public string Key { get; } = key;

    private static string Preview(string value) =>
        "'" + new string([.. value.Take(60).Select(c => char.IsControl(c) ? '?' : c)]) + (value.Length > 60 ? "…" : string.Empty) + "'";
}

/// <summary>A deploy stopped because its lock was lost before it finished: it wrote nothing after that.</summary>
public sealed class DeployLockLostException(string message) : CapstanException(RefusalKind.Failure, message);
