using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Core.Values;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan validate</c>: load the repo and render every release, reporting every problem with its location.</summary>
internal sealed class ValidateCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    private readonly Option<string?> _repo = CommonOptions.Repo();
    private readonly Option<string?> _stateFile = CommonOptions.StateFile();
    private readonly Option<string?> _state = CommonOptions.State();
    private readonly Option<string> _output = CommonOptions.Output("text", "json");
    private readonly Option<bool> _verbose = CommonOptions.Verbose();

    public Command Build()
    {
        var command = new Command("validate", "Check the deployment repo: schema, names, needs, cycles, values of every release")
        {
            _repo, _state, _stateFile, _output, _verbose,
        };
        command.SetAction(ExecuteAsync);
        return command;
    }

    private async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var json = parse.GetValue(_output) == "json";
        var findings = new List<Diagnostic>();
        IReadOnlyList<MissingValuesFile> missing = [];
        var instances = 0;
        RepoSession? session = null;
        try
        {
            session = RepoSession.Open(env, parse.GetValue(_repo));
            findings.AddRange(session.Warnings);
            findings.AddRange(Core.Train.TrainMap.Check(session.Model, session.Files));
            DynamicState state;
            try
            {
                state = await session.ReadStateAsync(parse.GetValue(_stateFile), parse.GetValue(_state), cancellationToken);
            }
            catch (StateStoreException ex)
            {
                // Validation checks the repo; an unreachable store is reported, and the repo is checked without it.
                findings.Add(new Diagnostic(Severity.Warning, SourceLocation.OfFile(RepoLoader.MainFile),
                    $"dynamic state not read ({ex.Message}); periodic releases were checked with maintenance disabled"));
                state = StateRules.Fresh(session.Model.Datacenters[0].Name, [.. session.Model.DatacenterNames]) with { MaintenanceEnabled = false };
            }

            foreach (var problem in state.Incoherences())
            {
                findings.Add(new Diagnostic(Severity.Warning, SourceLocation.OfFile(session.Model.StateEndpoint), problem));
            }

            var result = session.Renderer.Render(new RenderSelection(), state);
            missing = result.MissingValuesFiles;
            instances = result.Releases.Count;
        }
        catch (RepoValidationException ex) when (json)
        {
            findings.AddRange(ex.Diagnostics);
        }

        var errors = findings.Count(f => f.Severity == Severity.Error);
        if (json)
        {
            var doc = new JsonObject
            {
                ["valid"] = errors == 0,
                ["findings"] = new JsonArray([.. findings.Select(f => (JsonNode)new JsonObject
                {
                    ["severity"] = f.Severity == Severity.Error ? "error" : "warning",
                    ["file"] = f.Location.File,
                    ["line"] = f.Location.Line,
                    ["column"] = f.Location.Column,
                    ["message"] = f.Message,
                })]),
                ["missingValuesFiles"] = new JsonArray([.. missing.Select(m => (JsonNode)new JsonObject { ["path"] = m.Path, ["layer"] = ValuesLayout.NameOf(m.Layer) })]),
            };
            console.Profile.Out.Writer.WriteLine(KubeSerializer.ToJson(doc));
            return errors == 0 ? ExitCodes.Success : ExitCodes.UserError;
        }

        foreach (var warning in findings)
        {
            error.WriteLine(warning.ToString());
        }

        if (parse.GetValue(_verbose))
        {
            foreach (var file in missing)
            {
                error.WriteLine($"capstan: note: {file}");
            }
        }
        else if (missing.Count > 0)
        {
            error.WriteLine($"capstan: note: {missing.Count} optional values files do not exist (a missing layer file is allowed; --verbose lists them)");
        }

        if (errors > 0)
        {
            error.WriteLine($"capstan: {errors} error{(errors == 1 ? string.Empty : "s")}: the repo is not valid");
            return ExitCodes.UserError;
        }

        var model = session!.Model;
        console.Profile.Out.Writer.WriteLine(
            $"{model.Project}: valid ({model.Datacenters.Count} datacenters, {model.Groups.Count} server groups, {model.AllReleases().Count()} releases " +
            $"deployed as {instances} across the datacenters, {findings.Count} warnings)");
        return ExitCodes.Success;
    }
}
