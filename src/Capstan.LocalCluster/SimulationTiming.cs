namespace Capstan.LocalCluster;

/// <summary>How long simulated things take. <see cref="Instant"/> for tests, <see cref="Realistic"/> for demos.</summary>
public sealed record SimulationTiming
{
    /// <summary>Everything happens at the next controller pass.</summary>
    public static SimulationTiming Instant { get; } = new();

    /// <summary>Seconds, as on a small real cluster.</summary>
    public static SimulationTiming Realistic { get; } = new()
    {
        PodStart = TimeSpan.FromSeconds(1.5),
        PodReady = TimeSpan.FromSeconds(1),
        JobRun = TimeSpan.FromSeconds(3),
        CrashRestart = TimeSpan.FromSeconds(5),
        PodTerminate = TimeSpan.FromSeconds(2),
        ControllerLatency = TimeSpan.FromMilliseconds(150),
        Tick = TimeSpan.FromMilliseconds(200),
        AutoscalerSync = TimeSpan.FromSeconds(15),
    };

    /// <summary>From pod creation to its containers running.</summary>
    public TimeSpan PodStart { get; init; } = TimeSpan.Zero;

    /// <summary>From running to ready.</summary>
    public TimeSpan PodReady { get; init; } = TimeSpan.Zero;

    /// <summary>How long a Job's pod runs before it exits.</summary>
    public TimeSpan JobRun { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// The longest a deleted pod stays Terminating: its grace period, cut to this (zero: removed at the kubelet's next
    /// pass, after the delete was answered).
    /// </summary>
    public TimeSpan PodTerminate { get; init; } = TimeSpan.Zero;

    /// <summary>Between restarts of a crash-looping container.</summary>
    public TimeSpan CrashRestart { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long controllers take to notice a write (a burst of writes within it is handled in one pass): until then
    /// <c>status.observedGeneration</c> lags <c>metadata.generation</c>, as on a real cluster.
    /// </summary>
    public TimeSpan ControllerLatency { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How often controllers run when nothing wakes them.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// How often the autoscaler controller looks again at an autoscaler whose spec it has seen (kube-controller-manager's
    /// <c>--horizontal-pod-autoscaler-sync-period</c>, 15 s); a new or changed spec is acted on at once.
    /// </summary>
    public TimeSpan AutoscalerSync { get; init; } = TimeSpan.Zero;

    /// <summary>How often a watch that asked for bookmarks gets one.</summary>
    public TimeSpan Bookmark { get; init; } = TimeSpan.FromSeconds(5);
}
