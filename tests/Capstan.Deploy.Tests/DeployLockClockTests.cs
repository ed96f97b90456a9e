using Capstan.State;
using Capstan.State.Files;
using Microsoft.Extensions.Time.Testing;

namespace Capstan.Deploy.Tests;

/// <summary>The deploy lock's keep-alive on a fake clock: a lease that runs out is a lost lock, with why.</summary>
public sealed class DeployLockClockTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-lock-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_lease_that_runs_out_while_nobody_renews_it_is_a_lost_lock()
    {
        var clock = new SignallingClock(new FakeTimeProvider(DateTimeOffset.UtcNow));
        await using var store = new FileStateStore(_dir, clock);
        await using var held = await DeployLock.AcquireAsync(store, "farm", "alice", "a deploy", default, ttl: TimeSpan.FromSeconds(15), time: clock);
        var lost = new TaskCompletionSource();
        using var registration = held.Lost.Register(() => lost.TrySetResult());

        // The keep-alive waits a third of the lease between beats; once it waits, the clock jumps past the whole lease,
        // as if the process had been frozen: its next beat finds the lease gone.
        await clock.TimerCreated.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(held.Lost.IsCancellationRequested);
        clock.Inner.Advance(TimeSpan.FromSeconds(20));
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Matches(@"^the deploy lock was lost: lease \d+ has expired in ", held.LostReason);
        Assert.Null(await DeployLock.HolderAsync(store, "farm", default));
    }

    [Fact]
    public async Task Both_stores_say_a_lease_is_gone_with_the_same_exception()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var store = new FileStateStore(_dir, clock);
        var lease = await store.GrantLeaseAsync(TimeSpan.FromSeconds(5), default);
        await store.KeepAliveAsync(lease, default);
        clock.Advance(TimeSpan.FromSeconds(6));

        var gone = await Assert.ThrowsAsync<LeaseExpiredException>(() => store.KeepAliveAsync(lease, default));

        Assert.Equal(lease, gone.Lease);
    }

    /// <summary>
    /// A fake clock that says when someone first waits on it for a third of the lease (the keep-alive's beat), so that the
    /// test moves time only once the keep-alive waits.
    /// </summary>
    private sealed class SignallingClock(FakeTimeProvider inner) : TimeProvider
    {
        private readonly TaskCompletionSource _created = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public FakeTimeProvider Inner { get; } = inner;

        public Task TimerCreated => _created.Task;

        public override DateTimeOffset GetUtcNow() => Inner.GetUtcNow();

        public override long GetTimestamp() => Inner.GetTimestamp();

        public override long TimestampFrequency => Inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = Inner.CreateTimer(callback, state, dueTime, period);
            if (dueTime == TimeSpan.FromSeconds(5))
            {
                _created.TrySetResult();
            }

            return timer;
        }
    }
}
