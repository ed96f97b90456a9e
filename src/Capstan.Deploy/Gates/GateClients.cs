using Capstan.Core.Config;

namespace Capstan.Deploy.Gates;

/// <summary>The gates of a repo, wired to its Prometheus (TLS verified) on the system clock.</summary>
public static class GateClients
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The Prometheus of capstan.yaml, or null when it names none.</summary>
    public static PrometheusClient? Prometheus(FarmModel model) =>
        model.Gates.Prometheus is { } url ? new PrometheusClient(Http, url) : null;

    /// <summary>The stage gates of a repo, or null when it has none.</summary>
    public static StageGates? For(FarmModel model) =>
        model.Gates.Gates.Count > 0 ? new(model, new GateRunner(Prometheus(model), Http, TimeProvider.System)) : null;
}
