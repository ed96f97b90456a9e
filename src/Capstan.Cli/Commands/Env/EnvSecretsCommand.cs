using System.CommandLine;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Security;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env secrets init NAME</c>: an environment's own secrets file, a fresh value for every key production has.</summary>
internal sealed class EnvSecretsCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
    {
        var command = new Command("secrets", "An environment's own secrets (environments/NAME.secrets.yaml): never production's");
        command.Add(BuildInit());
        return command;
    }

    private Command BuildInit()
    {
        var name = new Argument<string>("name") { Description = "The environment (it need not exist yet)" };
        var repo = CommonOptions.Repo();
        var purpose = new Option<string?>("--purpose") { Description = "Its class, whose backends decide the database host it is given (default: the farm's profile)", HelpName = "CLASS" };
        var force = new Option<bool>("--force") { Description = "Replace an existing secrets file of the environment" };
        var command = new Command("init", "Write environments/NAME.secrets.yaml (mode 0600) with a fresh value for every key production's secrets have: random passwords and keys, a self-signed certificate for TLS") { name, repo, purpose, force };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var environment = parse.GetValue(name)!;
            EnvironmentNames.Check(environment, []);
            var relative = EnvironmentSecrets.PathOf(environment);
            var path = Path.Combine(session.Files.Root, relative);
            if (File.Exists(path) && !parse.GetValue(force))
            {
                throw new UserInputException($"{relative} exists already; add --force to replace it with fresh values");
            }

            var production = EnvironmentSecrets.Production(session.Model, session.Files)
                ?? throw new UserInputException($"production's secrets layer ({string.Join(", ", session.Model.Values.For(Core.Config.ValuesLayer.Secrets))}) is not on this machine, so its keys are unknown: write {relative} by hand with the keys your releases need");
            var policy = session.Model.EnvironmentPolicy;
            var profile = parse.GetValue(purpose) is { } cls ? policy.BackendsOf(policy.Class(cls)) : policy.Backends;
            var backends = session.Model.Backends is { } catalog ? EnvironmentBackends.Resolve(catalog, profile, environment) : null;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await PrivateFiles.WriteAllTextAsync(path, EnvironmentSecrets.Generate(production, environment, EnvironmentSecrets.DatabaseHost(backends)), ct);
            console.Profile.Out.Writer.WriteLine($"wrote {relative} (mode 0600): a fresh value for every key of production's secrets; keep it out of version control");
            return ExitCodes.Success;
        });
        return command;
    }
}
