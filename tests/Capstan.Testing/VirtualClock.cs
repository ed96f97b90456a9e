namespace Capstan.Testing;

/// <summary>
/// A clock whose time jumps forward to whatever is waited for: a timer (and so <c>Task.Delay(…, clock)</c>) moves the
/// clock to its due time and fires at once. Code that waits on it runs minutes of waiting in no real time, in the same
/// order as it would in real time. Meant for one waiter at a time.
/// </summary>
public sealed class VirtualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    /// <summary>How far the clock has moved since it started.</summary>
    public TimeSpan Elapsed => GetUtcNow() - start;

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new JumpTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Jump(TimeSpan by)
    {
        if (by > TimeSpan.Zero)
        {
            Interlocked.Add(ref _ticks, by.Ticks);
        }
    }

    private sealed class JumpTimer(VirtualClock clock, TimerCallback callback, object? state) : ITimer
    {
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (_disposed || dueTime == Timeout.InfiniteTimeSpan)
            {
                return !_disposed;
            }

            if (period != Timeout.InfiniteTimeSpan)
            {
                throw new NotSupportedException("a virtual clock fires one-shot timers only");
            }

            clock.Jump(dueTime);
            ThreadPool.QueueUserWorkItem(_ =>
            {
                if (!_disposed)
                {
                    callback(state);
                }
            });
            return true;
        }

        public void Dispose() => _disposed = true;

        public ValueTask DisposeAsync()
        {
            _disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
