using Capstan.Deploy;
using Prometheus;

namespace Capstan.Web;

/// <summary>
/// <c>/metrics</c> in Prometheus's text format (prometheus-net): releases ready/desired per release and datacenter,
/// deploys and their seconds by result, the dynamic state, the deploy lock, and the environments with their expiries.
/// Every value is read when scraped, from the same data the pages show.
/// </summary>
public sealed class DashboardMetrics
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly DashboardData _data;
    private readonly Gauge _ready;
    private readonly Gauge _desired;
    private readonly Gauge _sync;
    private readonly Gauge _health;
    private readonly Gauge _deploys;
    private readonly Gauge _deploySeconds;
    private readonly SemaphoreSlim _collecting = new(1, 1);
    private readonly Gauge _primary;
    private readonly Gauge _readOnly;
    private readonly Gauge _maintenance;
    private readonly Gauge _lock;
    private readonly Gauge _environments;
    private readonly Gauge _expiry;
    private readonly HashSet<string[]> _seen = new(new LabelsComparer());

    public DashboardMetrics(DashboardData data)
    {
        _data = data;
        var factory = Metrics.WithCustomRegistry(_registry);
        _ready = factory.CreateGauge("capstan_release_ready_replicas", "Ready replicas of a release's Deployment.", ["datacenter", "namespace", "release"]);
        _desired = factory.CreateGauge("capstan_release_desired_replicas", "Replicas a release's Deployment wants.", ["datacenter", "namespace", "release"]);
        _sync = factory.CreateGauge("capstan_release_sync", "1 for a release's sync state (Synced, OutOfSync, Drifted, Held), 0 for the others.", ["datacenter", "namespace", "release", "state"]);
        _health = factory.CreateGauge("capstan_release_health", "1 for a release's health (Healthy, Progressing, Degraded, Missing), 0 for the others.", ["datacenter", "namespace", "release", "state"]);
        _deploys = factory.CreateGauge("capstan_recent_deploys", $"Deploys among the last {DashboardData.DeployJournalLimit} the state store keeps, by result.", ["result"]);
        _deploySeconds = factory.CreateGauge("capstan_recent_deploy_seconds", $"Seconds the last {DashboardData.DeployJournalLimit} deploys the state store keeps took, summed by result.", ["result"]);
        _primary = factory.CreateGauge("capstan_primary_datacenter", "1 for the primary datacenter.", ["datacenter"]);
        _readOnly = factory.CreateGauge("capstan_read_only", "1 when MediaWiki is read-only in the datacenter.", ["datacenter"]);
        _maintenance = factory.CreateGauge("capstan_maintenance_enabled", "1 when maintenance is enabled.");
        _lock = factory.CreateGauge("capstan_deploy_lock_held", "1 while someone holds the deploy lock.", ["manual"]);
        _environments = factory.CreateGauge("capstan_environments", "Test environments by purpose.", ["purpose"]);
        _expiry = factory.CreateGauge("capstan_environment_expiry_timestamp_seconds", "When a test environment expires (Unix time).", ["environment", "owner", "purpose"]);
        _registry.AddBeforeCollectCallback(CollectAsync);
    }

    /// <summary>Writes the metrics in the text format.</summary>
    public Task ExportAsync(Stream stream, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(stream, cancellationToken);

    private async Task CollectAsync(CancellationToken cancellationToken)
    {
        // One scrape at a time: each one drops the series it did not see, which must not race another's.
        await _collecting.WaitAsync(cancellationToken);
        try
        {
            await CollectOnceAsync(cancellationToken);
        }
        finally
        {
            _collecting.Release();
        }
    }

    private async Task CollectOnceAsync(CancellationToken cancellationToken)
    {
        var seen = new HashSet<string[]>(new LabelsComparer());
        void Set(Gauge gauge, double value, params string[] labels)
        {
            gauge.WithLabels(labels).Set(value);
            seen.Add([gauge.Name, .. labels]);
        }

        var status = await _data.ReleasesAsync(cancellationToken);
        foreach (var r in status["releases"]!.AsArray())
        {
            string[] labels = [r!["datacenter"]!.GetValue<string>(), r["namespace"]!.GetValue<string>(), r["name"]!.GetValue<string>()];
            if (r["desired"] is { } desired)
            {
                Set(_ready, r["ready"]?.GetValue<int>() ?? 0, labels);
                Set(_desired, desired.GetValue<int>(), labels);
            }

            foreach (var verdict in Enum.GetNames<SyncState>())
            {
                Set(_sync, r["sync"]?.GetValue<string>() == verdict ? 1 : 0, [.. labels, verdict]);
            }

            foreach (var verdict in Enum.GetNames<HealthState>())
            {
                Set(_health, r["health"]?.GetValue<string>() == verdict ? 1 : 0, [.. labels, verdict]);
            }
        }

        foreach (var group in (await DeployProgress.FinishedAsync(_data.Store, _data.Model.Project, DashboardData.DeployJournalLimit, cancellationToken))
                     .GroupBy(d => d["succeeded"]?.GetValue<bool>() == true ? "succeeded" : "failed"))
        {
            Set(_deploys, group.Count(), group.Key);
            Set(_deploySeconds, group.Sum(d =>
                DateTimeOffset.TryParse(d["started"]?.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var s)
                && DateTimeOffset.TryParse(d["finished"]?.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var f)
                    ? (f - s).TotalSeconds
                    : 0), group.Key);
        }

        if ((await _data.State.ReadAsync(cancellationToken)).State is { } state)
        {
            foreach (var dc in _data.Model.DatacenterNames)
            {
                Set(_primary, state.PrimaryDc == dc ? 1 : 0, dc);
                Set(_readOnly, state.IsReadOnly(dc) ? 1 : 0, dc);
            }

            _maintenance.Set(state.MaintenanceEnabled ? 1 : 0);
        }

        var holder = await DeployLock.HolderAsync(_data.Store, _data.Model.Project, cancellationToken);
        Set(_lock, holder is null ? 0 : 1, holder?.Manual == true ? "true" : "false");
        Set(_lock, 0, holder?.Manual == true ? "false" : "true");

        var records = await _data.Environments.Records.ListAsync(cancellationToken);
        foreach (var cls in _data.Environments.Policy.Classes)
        {
            Set(_environments, records.Count(r => r.Purpose == cls.Name), cls.Name);
        }

        foreach (var record in records)
        {
            Set(_expiry, record.Expires.ToUnixTimeSeconds(), record.Name, record.Owner, record.Purpose);
        }

        // Series of releases and environments that are gone are dropped, not left at their last value.
        foreach (var old in _seen.Where(s => !seen.Contains(s)).ToList())
        {
            var gauge = new[] { _ready, _desired, _deploys, _deploySeconds, _primary, _readOnly, _lock, _environments, _expiry }.First(g => g.Name == old[0]);
            gauge.RemoveLabelled(old[1..]);
            _seen.Remove(old);
        }

        _seen.UnionWith(seen);
    }

    private sealed class LabelsComparer : IEqualityComparer<string[]>
    {
        public bool Equals(string[]? x, string[]? y) => x is not null && y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(string[] obj)
        {
            var hash = new HashCode();
            foreach (var s in obj)
            {
                hash.Add(s, StringComparer.Ordinal);
            }

            return hash.ToHashCode();
        }
    }
}
