namespace Capstan.Kubernetes;

/// <summary>
/// A token bucket per cluster: at most <c>burst</c> requests at once, refilled at <c>qps</c> per second, so that a big
/// plan cannot flood an API server (client-go's default is 5 QPS, burst 10; Capstan's is kubectl's, 50/300).
/// </summary>
internal sealed class RateLimiter(double qps, int burst, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private DateTimeOffset _last = time.GetUtcNow();

    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            TimeSpan wait;
            lock (_lock)
            {
                var now = time.GetUtcNow();
                _tokens = Math.Min(burst, _tokens + ((now - _last).TotalSeconds * qps));
                _last = now;
                if (_tokens >= 1)
                {
                    _tokens -= 1;
                    return;
                }

                wait = TimeSpan.FromSeconds((1 - _tokens) / qps);
            }

            await Task.Delay(wait, time, cancellationToken);
        }
    }
}
