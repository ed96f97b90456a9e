using System.CommandLine;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env drift</c>: how an environment differs from production: each values key with the file:line that set it on each side, the image, releases only production runs.</summary>
internal sealed class EnvDriftCommand(IAnsiConsole console, CliEnvironment env, EnvCommand shared)
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("table", "json");
        var command = new Command("drift", "How an environment differs from production: each values key with the file:line that set it on each side, the image, releases only production runs") { name, repo, state, output };
        command.SetAction(async (parse, ct) =>
        {
            var record = await shared.OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            var production = await RepoSession.Open(env, parse.GetValue(repo)).ReadStateAsync(null, parse.GetValue(state), ct, initialise: false);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, EnvCommand.Selection(record), ct, readState: false);
            var service = session.Environments();
            var drift = await service.DriftAsync(record.Name, production, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(drift.ToJson()));
                return ExitCodes.Success;
            }

            var table = new PlainTable("RELEASE", "KEY", "ENVIRONMENT", "SET BY", "PRODUCTION", "SET BY");
            foreach (var v in drift.Values)
            {
                table.Add(v.Release, v.Difference.Path, v.Difference.Environment ?? "(absent)", v.Difference.EnvironmentSetBy?.ToString() ?? "-", v.Difference.Production ?? "(absent)", v.Difference.ProductionSetBy?.ToString() ?? "-");
            }

            writer.Write(drift.Values.Count == 0 ? $"{drift.Environment}: no values differ from production\n" : table.ToString());
            foreach (var d in drift.State)
            {
                writer.WriteLine($"dynamic state: {d.Key} is {d.Environment} here, {d.Production} in production");
            }

            foreach (var only in drift.OnlyInProduction)
            {
                writer.WriteLine($"only in production: {only}");
            }

            foreach (var live in drift.Live)
            {
                writer.WriteLine($"live: {FreeText.Printable(live)}");
            }

            if (drift.Backends.Count > 0)
            {
                var backends = new PlainTable("BACKEND", "KIND", "SOURCE", "ENVIRONMENT", "PRODUCTION");
                foreach (var b in drift.Backends)
                {
                    backends.Add(b.Backend, b.Kind, b.Source, b.Environment, b.Production);
                }

                writer.Write(backends.ToString());
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
