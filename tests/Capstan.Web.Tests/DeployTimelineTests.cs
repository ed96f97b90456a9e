using System.Text.Json.Nodes;

namespace Capstan.Web.Tests;

/// <summary>The deploy timeline's bars and its critical path, from a deploy record's times.</summary>
public sealed class DeployTimelineTests
{
    private static JsonObject Release(string id, string stage, string result, params (string State, double At)[] times) => new()
    {
        ["release"] = id,
        ["stage"] = stage,
        ["result"] = result,
        ["times"] = new JsonObject(times.Select(t => KeyValuePair.Create(t.State, (JsonNode?)t.At))),
    };

    [Fact]
    public void The_critical_path_runs_back_from_the_last_bar_through_what_each_waited_for()
    {
        var record = new JsonObject
        {
            ["releases"] = new JsonArray(
                Release("eqiad/mw-debug/pinkunicorn", "Testservers", "Done", ("Applying", 0.0), ("Waiting", 0.2), ("Done", 2.0)),
                Release("eqiad/mw-debug/limits", "Testservers", "Done", ("Applying", 0.0), ("Done", 0.5)),
                Release("eqiad/mw-web/canary", "Canaries", "Done", ("Applying", 2.02), ("Waiting", 2.1), ("Done", 5.0)),
                Release("codfw/mw-web/canary", "Canaries", "Done", ("Applying", 2.02), ("Waiting", 2.1), ("Done", 4.0)),
                Release("eqiad/mw-web/main", "Production", "Failed", ("Applying", 8.01), ("Waiting", 8.5), ("Failed", 9.0)),
                Release("eqiad/mw-api-int/main", "Production", "NotStarted")),
            ["phases"] = new JsonArray(
                new JsonObject { ["name"] = "plan", ["seconds"] = 0.3 },
                new JsonObject { ["name"] = "stage canaries", ["seconds"] = 2.98, ["start"] = 2.02 },
                new JsonObject { ["name"] = "gate after canaries", ["seconds"] = 3.0, ["start"] = 5.0 }),
        };

        var bars = DeployTimeline.Bars(record, now: null);

        // A release without times (not started) has no bar; phases without a start (the plan) and stages are not bars.
        Assert.Equal(
            ["eqiad/mw-debug/pinkunicorn", "eqiad/mw-debug/limits", "eqiad/mw-web/canary", "codfw/mw-web/canary", "eqiad/mw-web/main", "gate after canaries"],
            bars.Select(b => b.Label));
        Assert.Equal(
            ["eqiad/mw-web/main", "gate after canaries", "eqiad/mw-web/canary", "eqiad/mw-debug/pinkunicorn"],
            bars.Where(b => b.Critical).OrderByDescending(b => b.End).Select(b => b.Label));

        var svg = DeployTimeline.Svg(record)!;
        Assert.StartsWith("<svg id=\"timeline\" class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\"", svg, StringComparison.Ordinal);
        Assert.Equal(6, svg.Split("<g class=\"bar").Length - 1);
        Assert.Equal(4, svg.Split("<g class=\"bar critical\"").Length - 1);
    }

    [Fact]
    public void A_running_release_is_drawn_to_now_and_names_are_encoded()
    {
        var running = new JsonObject
        {
            ["plan"] = new JsonArray(
                new JsonObject { ["release"] = "eqiad/mw-web/<main>", ["stage"] = "Production", ["state"] = "Waiting", ["times"] = new JsonObject { ["Applying"] = 1.0, ["Waiting"] = 1.5 } },
                new JsonObject { ["release"] = "eqiad/mw-web/canary", ["stage"] = "Canaries", ["state"] = "Pending", ["times"] = new JsonObject() }),
        };

        var bar = Assert.Single(DeployTimeline.Bars(running, now: 7.0));
        Assert.True(bar.Open);
        Assert.Equal(7.0, bar.End);
        var svg = DeployTimeline.Svg(running, now: 7.0)!;
        Assert.Contains("eqiad/mw-web/&lt;main&gt;", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("<main>", svg, StringComparison.Ordinal);
        Assert.Contains("rolled out in 5.5 s so far (Waiting)", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void A_deploy_without_times_has_no_timeline() =>
        Assert.Null(DeployTimeline.Svg(new JsonObject { ["releases"] = new JsonArray(new JsonObject { ["release"] = "eqiad/mw-web/main", ["result"] = "Done" }) }));
}
