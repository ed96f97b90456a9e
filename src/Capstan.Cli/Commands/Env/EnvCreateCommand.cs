using System.CommandLine;
using Capstan.Core.Environments;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env create</c>: create an environment: record its owner, purpose and expiry, then deploy its groups (one replica each, canaries off) into its own namespaces.</summary>
internal sealed class EnvCreateCommand(IAnsiConsole console, TextWriter error, CliEnvironment env, EnvCommand shared)
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "The environment's name (its namespaces are NAME--<group>)" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var owner = new Option<string?>("--owner") { Description = "Who answers for it (required)", HelpName = "WHO" };
        var purpose = new Option<string?>("--purpose") { Description = "Its class: ci (1 day), feature (30 days, needs --link), integration (90 days, follows production), demo (30 days, --pin)", HelpName = "CLASS", Required = true };
        var expires = new Option<string?>("--expires") { Description = "How long it lives, within its class's cap: 12h, 7d", HelpName = "DURATION", Required = true };
        var description = new Option<string?>("--description") { Description = "What it is for", HelpName = "TEXT" };
        var links = new Option<string[]>("--link") { Description = "A link to the task or patch (repeatable)", HelpName = "URL", AllowMultipleArgumentsPerToken = false };
        var pin = new Option<bool>("--pin") { Description = "Pinned to the repo as it is now, instead of following production" };
        var image = new Option<string?>("--image") { Description = "A MediaWiki image that wins over every values layer", HelpName = "REF" };
        var dc = new Option<string[]>("--dc") { Description = "A datacenter whose cluster runs it (repeatable: two make a two-datacenter environment; default: the primary)", HelpName = "DC" };
        var set = new Option<string[]>("--set") { Description = "A value for this environment, after every values file: key.path=value (repeatable)", HelpName = "KEY=VALUE" };
        var groups = new Option<string[]>("--group") { Description = "A server group to include (repeatable; default: the web and API groups)", HelpName = "NS" };
        var values = new Option<string[]>("--values") { Description = "Another values file layered after environments/NAME.yaml (repeatable)", HelpName = "FILE" };
        var sources = new Option<string[]>("--source") { Description = "Run a developer's code tree: build an image with it in place of the repo's tree of that version (repeatable; rebuilt by every refresh)", HelpName = "VERSION=DIR" };
        var config = new Option<string?>("--config") { Description = "Run a developer's config tree in place of the repo's (rebuilt by every refresh)", HelpName = "DIR" };
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("create", "Create an environment: record its owner, purpose and expiry, then deploy its groups (one replica each, canaries off) into its own namespaces")
        {
            name, repo, state, owner, purpose, expires, description, links, pin, image, sources, config, dc, groups, values, set, actor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var production = await repoSession.ReadStateAsync(null, parse.GetValue(state), ct, initialise: false);
            var datacenters = parse.GetValue(dc) is { Length: > 0 } given ? given : [production.PrimaryDc];
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(datacenters.Length == 1 ? datacenters[0] : null), ct, readState: false);
            var who = session.Repo.Actor(parse.GetValue(actor));
            var service = session.Environments();
            var trees = shared.SourceTrees(parse.GetValue(sources) ?? [], parse.GetValue(config));
            var built = parse.GetValue(image);
            if (trees.Count > 0)
            {
                if (built is not null)
                {
                    throw new Core.Diagnostics.UserInputException("--image names an image and --source/--config build one: give one or the other");
                }

                // Everything else is checked before the build, so a mistake costs no build.
                EnvironmentNames.Check(parse.GetValue(name)!, []);
                service.Policy.Check(parse.GetValue(owner), parse.GetValue(purpose)!, env.Time.GetUtcNow() + EnvironmentPolicy.ParseDuration(parse.GetValue(expires)!), env.Time.GetUtcNow(),
                    parse.GetValue(pin) ? EnvironmentBase.Pinned : EnvironmentBase.Follow, parse.GetValue(links) ?? []);
                built = await session.Images().BuildForEnvironmentAsync(parse.GetValue(name)!, trees, null, ct);
            }

            var request = new EnvironmentRequest(
                parse.GetValue(name)!, parse.GetValue(owner), parse.GetValue(purpose)!, parse.GetValue(description) ?? string.Empty,
                parse.GetValue(links) ?? [], EnvironmentPolicy.ParseDuration(parse.GetValue(expires)!), parse.GetValue(pin), built,
                datacenters, parse.GetValue(groups) ?? [], parse.GetValue(values) ?? [], who)
            {
                Settings = parse.GetValue(set) ?? [],
                Sources = trees,
            };
            var progress = new EnvCommand.ProgressLines(error);
            shared.WarnOfProduction(EnvironmentScope.Backends(session.Repo.Model, request.Name, request.Purpose));
            var (record, _) = await service.CreateAsync(request, production, progress, ct);
            var urls = EnvironmentScope.Urls(session.Repo.Model, record);
            shared.Print(parse.GetValue(output) == "json", record, $"environment {record.Name} is ready in {string.Join(", ", record.Datacenters.SelectMany(d => record.Groups.Select(g => $"{d}/{EnvironmentNames.Namespace(record.Name, g)}")))}; it expires {EnvCommand.When(record.Expires)}", urls);
            foreach (var (group, url) in urls)
            {
                if (parse.GetValue(output) != "json")
                {
                    console.Profile.Out.Writer.WriteLine($"  {group}: {url}");
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
