using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Deploy.Gates;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan gate analyze STAGE</c>: suggests a gate's limits from the history in Prometheus.</summary>
internal sealed class GateCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    private readonly Option<string?> _repo = CommonOptions.Repo();
    private readonly Option<string?> _dc = CommonOptions.Datacenter();
    private readonly Option<string> _since = new("--since") { Description = "How much history to read (a whole number and s, m, h or d)", DefaultValueFactory = _ => "90d", HelpName = "DURATION" };
    private readonly Option<double?> _try = new("--try") { Description = "Also count how many past windows this limit would have failed", HelpName = "N" };
    private readonly Option<string> _output = CommonOptions.Output("table", "json");
    private readonly Argument<string> _stage = new("STAGE") { Description = "The stage whose gate to analyse: testservers or canaries" };

    public Command Build()
    {
        var analyze = new Command(
            "analyze",
            "Suggest the limit of each prometheus check of the gate after STAGE from its history: its value in every past soak-long window, " +
            "outliers dropped (above Q3 + 3 IQR), then mean + 3 standard deviations; and how many past windows that limit, the current one and --try would have failed")
        {
            _stage, _repo, _dc, _since, _try, _output,
        };
        analyze.SetAction(ExecuteAsync);
        return new Command("gate", "The gates between deployment stages") { analyze };
    }

    private async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var session = RepoSession.Open(env, parse.GetValue(_repo));
        var model = session.Model;
        var word = parse.GetValue(_stage)!;
        var stage = word switch
        {
            "testservers" => Stage.Testservers,
            "canaries" => Stage.Canaries,
            _ => throw new UserInputException($"'{word}' is not a stage with a gate after it (allowed: testservers, canaries)"),
        };
        var gate = model.Gates.After(stage)
            ?? throw new UserInputException($"capstan.yaml has no gate after {word} (gates: {(model.Gates.Gates.Count == 0 ? "none" : string.Join(", ", model.Gates.Gates.Select(g => g.StageWord)))})");
        var since = Durations.TryParse(parse.GetValue(_since)!) ?? throw new UserInputException($"--since '{parse.GetValue(_since)}' is not a duration (a whole number and s, m, h or d: 90d)");
        var prometheus = GateClients.Prometheus(model) ?? throw new UserInputException("capstan.yaml has no prometheus.url to read the history from");
        var dcFilter = parse.GetValue(_dc);
        if (dcFilter is not null && !model.DatacenterNames.Contains(dcFilter, StringComparer.Ordinal))
        {
            throw new UserInputException($"unknown datacenter '{dcFilter}' (allowed: {string.Join(", ", model.DatacenterNames)})");
        }

        var releases = model.DatacenterNames.Where(dc => dcFilter is null || dc == dcFilter)
            .SelectMany(dc => model.AllReleases().Where(r => r.Release.Stage == stage && r.Release.Kind == ReleaseKind.MediaWiki && r.Release.RunsIn(dc))
                .Select(r => new ReleaseId(dc, model.LiveNamespace(r.Group), r.Release.Name)))
            .ToList();
        if (gate.Checks.OfType<PromQueryCheck>().Any() is false)
        {
            error.WriteLine($"capstan: the gate after {word} has no prometheus check with a limit to analyse (relative and http checks have none)");
            return ExitCodes.UserError;
        }

        error.WriteLine($"capstan: reading {Durations.Format(since)} of history in {Durations.Format(gate.Soak)} windows for {releases.Count} release(s) from {prometheus.BaseUrl}");
        IReadOnlyList<CheckAnalysis> results;
        try
        {
            results = await new GateAnalysis(prometheus).AnalyzeAsync(gate, releases, env.Time.GetUtcNow(), since, parse.GetValue(_try), cancellationToken);
        }
        catch (PrometheusException ex)
        {
            error.WriteLine($"capstan: error: {ex.Message}");
            return ex.BadQuery ? ExitCodes.UserError : ExitCodes.Failure;
        }

        var writer = console.Profile.Out.Writer;
        if (parse.GetValue(_output) == "json")
        {
            writer.WriteLine(KubeSerializer.ToJson(new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
            {
                ["check"] = r.Check,
                ["expression"] = r.Expression,
                ["windows"] = r.Windows,
                ["outliers"] = r.Outliers,
                ["mean"] = Finite(r.Mean),
                ["stddev"] = Finite(r.StdDev),
                ["suggested"] = Finite(r.Suggested),
                ["failingAtSuggested"] = r.FailingAtSuggested,
                ["current"] = r.Current,
                ["failingAtCurrent"] = r.FailingAtCurrent,
                ["tried"] = r.Tried,
                ["failingAtTried"] = r.FailingAtTried,
            })])));
            return ExitCodes.Success;
        }

        foreach (var r in results)
        {
            writer.WriteLine($"check {r.Check}, on each of {releases.Count} release(s): {r.Expression}");
            if (r.Windows == 0)
            {
                writer.WriteLine("  no history: the expression returned nothing in the period (is Prometheus scraping these releases?)");
                continue;
            }

            writer.WriteLine($"  {r.Windows} windows of {Durations.Format(gate.Soak)}, {r.Outliers} outlier(s) dropped; mean {N(r.Mean)}, standard deviation {N(r.StdDev)}");
            writer.WriteLine($"  suggested max: {N(r.Suggested)} (mean + 3σ): {Failing(r.FailingAtSuggested, r.Windows)}");
            if (r.Current is { } current)
            {
                writer.WriteLine($"  current max:   {N(current)}: {Failing(r.FailingAtCurrent ?? 0, r.Windows)}");
            }

            if (r.Tried is { } tried)
            {
                writer.WriteLine($"  tried max:     {N(tried)}: {Failing(r.FailingAtTried ?? 0, r.Windows)}");
            }
        }

        return ExitCodes.Success;
    }

    private static JsonNode? Finite(double value) => double.IsFinite(value) ? JsonValue.Create(Math.Round(value, 6)) : null;

    private static string N(double value) => value.ToString(Math.Abs(value) >= 100 ? "0.#" : "0.##", CultureInfo.InvariantCulture);

    private static string Failing(int failing, int windows) =>
        string.Create(CultureInfo.InvariantCulture, $"{failing} of {windows} past windows would have failed ({100.0 * failing / windows:0.##}%)");
}
