using System.Text.Json.Nodes;
using Capstan.Core.Planning;

namespace Capstan.Core.Tests;

/// <summary>When the planner asks the server, and what it compares.</summary>
public sealed class ObjectComparisonTests
{
    private static JsonObject Live(string capstanApplied, string extraLabel = "") => (JsonObject)JsonNode.Parse($$$"""
        {"kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "web"{{{extraLabel}}}},
          "managedFields": [{"manager": "capstan", "operation": "Apply", "time": "{{{capstanApplied}}}"}]},
         "data": {"a": "1"}}
        """)!;

    private static readonly JsonObject Desired = (JsonObject)JsonNode.Parse("""{"kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "web"}}, "data": {"a": "1"}}""")!;

    [Fact]
    public void An_object_applied_as_recorded_and_live_as_written_needs_no_server()
    {
        var recorded = DateTimeOffset.Parse("2026-11-30T12:00:05.5Z", System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(ObjectComparison.NeedsServer(Desired, Live("2026-11-30T12:00:05Z"), Desired, recorded));
    }

    [Fact]
    public void An_apply_after_the_record_makes_the_record_stale_and_the_server_is_asked()
    {
        // A later deploy applied (and added a label) but failed before writing its record; going back to the recorded
        // manifest must not be a silent no-op, or the label stays forever.
        var recorded = DateTimeOffset.Parse("2026-11-30T12:00:05.5Z", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(ObjectComparison.NeedsServer(Desired, Live("2026-11-30T12:07:00Z", ", \"extra\": \"x\""), Desired, recorded));
    }

    [Fact]
    public void Only_fields_capstan_sets_or_set_last_time_are_compared()
    {
        var judged = Live("2026-11-30T12:00:05Z", ", \"team\": \"sre\"");
        judged["metadata"]!["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = "3" };
        var live = Live("2026-11-30T12:00:05Z", ", \"team\": \"sre\"");
        live["metadata"]!["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = "2" };
        var (set, removed) = ObjectComparison.Compare(judged, live, Desired, null);
        Assert.Empty(set);
        Assert.Empty(removed);

        judged["data"]!["a"] = "2";
        Assert.Equal([".data.a"], ObjectComparison.Compare(judged, live, Desired, null).Set);
    }
}
