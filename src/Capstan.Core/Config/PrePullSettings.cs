using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// Warming the nodes with a deploy's new images before its rollout starts (<c>pre-pull:</c> in capstan.yaml,
/// <c>deploy --pre-pull</c>): as many nodes pull at once as <see cref="MaxEgress"/> allows at <see cref="NodeBandwidth"/>
/// each, so the registry never sends more than that.
/// </summary>
public sealed record PrePullSettings(bool Enabled, long MaxEgress, long NodeBandwidth, TimeSpan Timeout)
{
    /// <summary>Off; when turned on, 10 Gbit/s of registry egress for nodes of 1 Gbit/s (ten nodes at once), 10 minutes per node.</summary>
    public static PrePullSettings Default { get; } = new(false, 1_250_000_000, 125_000_000, TimeSpan.FromMinutes(10));

    private static readonly string[] Keys = ["enabled", "max-egress", "node-bandwidth", "timeout"];

    /// <summary>How many nodes pull at once: the egress allowed over one node's bandwidth, at least one.</summary>
    public int NodesAtOnce => (int)Math.Clamp(MaxEgress / NodeBandwidth, 1, 10_000);

    /// <summary>Reads the <c>pre-pull:</c> section (null node: the defaults).</summary>
    public static PrePullSettings Read(NodeReader reader, ValueNode? node)
    {
        var map = reader.Map(node, "pre-pull", Keys);
        if (map is null)
        {
            return Default;
        }

        long RateOf(string key, long fallback)
        {
            if (reader.ScalarText(map[key], "pre-pull." + key) is not { } text)
            {
                return fallback;
            }

            if (Rates.TryParse(text) is { } rate)
            {
                return rate;
            }

            reader.Diagnostics.Error(map[key]!.Location, $"pre-pull.{key} '{text}' is not a rate (such as 125MB/s, 1Gbit/s or 10Gbps)");
            return fallback;
        }

        var timeout = Default.Timeout;
        if (reader.ScalarText(map["timeout"], "pre-pull.timeout") is { } timeoutText)
        {
            try
            {
                timeout = Environments.EnvironmentPolicy.ParseDuration(timeoutText);
            }
            catch (Diagnostics.UserInputException ex)
            {
                reader.Diagnostics.Error(map["timeout"]!.Location, "pre-pull.timeout: " + ex.Message);
            }
        }

        return new PrePullSettings(reader.Bool(map["enabled"], "pre-pull.enabled") ?? false, RateOf("max-egress", Default.MaxEgress), RateOf("node-bandwidth", Default.NodeBandwidth), timeout);
    }
}
