using System.CommandLine;
using Capstan.Core.Rendering;
using Capstan.Core.Train;
using Capstan.Deploy.Actions;
using Capstan.Deploy.Train;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary>
/// <c>capstan train status | forward | backward | to GROUP | block | unblock</c>: the weekly train, which moves a MediaWiki
/// version through the groups of wikis by rewriting wikiversions and deploying the image with it.
/// </summary>
internal sealed class TrainCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var command = new Command("train", "The weekly train: which wikis run which MediaWiki version, and moving a version through the groups of wikis");
        command.Add(BuildStatus());
        command.Add(BuildMove("forward", "Move the next group of wikis to the train's version, and deploy it through the stages and gates", TrainDirection.Forward));
        command.Add(BuildMove("backward", "Move the last group on the train's version back to the previous one, and deploy it", TrainDirection.Backward));
        command.Add(BuildMove("to", $"Put every group up to GROUP on the train's version and every later one on the previous version ({TrainSettings.Start}: all on the previous)", TrainDirection.To));
        command.Add(BuildBlock(block: true));
        command.Add(BuildBlock(block: false));
        return command;
    }

    private Command BuildStatus()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("text", "json");
        var noLive = new Option<bool>("--no-live") { Description = "Only the repo's wikiversions; do not read what the pods run" };
        var command = new Command("status", "Where the train is: each group of wikis and its version(s), the blocker, and whether every pod serves the same wikiversions") { repo, state, output, noLive };
        command.SetAction(async (parse, ct) =>
        {
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = repoSession.OpenState(parse.GetValue(state));
            await using (store)
            {
                var train = new TrainService(repoSession.Model, repoSession.Files, store, TimeProvider.System);
                TrainStatus status;
                if (parse.GetValue(noLive))
                {
                    status = await TrainStatus.ReadAsync(train, null, ct);
                }
                else
                {
                    await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
                    status = await TrainStatus.ReadAsync(train, session.Clusters, ct);
                }

                var writer = console.Profile.Out.Writer;
                if (parse.GetValue(output) == "json")
                {
                    writer.WriteLine(status.ToJson().ToJsonString());
                }
                else
                {
                    Print(writer, status);
                }

                return ExitCodes.Success;
            }
        });
        return command;
    }

    private Command BuildMove(string verb, string description, TrainDirection direction)
    {
        var group = new Argument<string>("group") { Description = $"The last group on the train's version after the move ({TrainSettings.Start}: none)" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var version = new Option<string?>("--version") { Description = "The version the train carries (default: the newest in image.sources)", HelpName = "VERSION" };
        var reason = CommonOptions.Reason("Why, recorded after the move's own description");
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var yes = new Option<bool>("--yes", "-y") { Description = "Deploy without asking (required when stdin is not a terminal)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show the move and the deploy plan; change nothing (wikiversions is put back)" };
        var skipGates = new Option<bool>("--skip-gates") { Description = "Go from stage to stage without the gates (needs --reason; recorded)" };
        var command = new Command(verb, description) { repo, state, version, reason, actor, output, yes, dryRun, skipGates };
        if (direction == TrainDirection.To)
        {
            command.Add(group);
        }

        command.SetAction(async (parse, ct) =>
        {
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = repoSession.OpenState(parse.GetValue(state));
            TrainMove move;
            var train = new TrainService(repoSession.Model, repoSession.Files, store, TimeProvider.System);
            await using (store)
            {
                move = await train.PlanAsync(direction, direction == TrainDirection.To ? parse.GetValue(group) : null, parse.GetValue(version), ct);
            }

            var writer = console.Profile.Out.Writer;
            if (move.IsNoOp)
            {
                error.WriteLine($"capstan: train: nothing to do: the train is at {move.Stop} ({move.Version} up to it)");
                return ExitCodes.Success;
            }

            foreach (var change in move.Changes)
            {
                error.WriteLine($"capstan: train: {change.Group}: {change.From} → {change.To} ({change.Wikis} wiki{(change.Wikis == 1 ? string.Empty : "s")})");
            }

            var intent = DeployIntent.ForRepoChange(move.Describe(), parse.GetValue(reason), parse.GetValue(dryRun), parse.GetValue(skipGates));
            var versionsFile = train.WikiVersionsFile;
            var snapshot = train.Write(move, [ImagePublisher.ImagesFile(repoSession.Model)]);
            var code = ExitCodes.Failure;
            try
            {
                code = await new DeployCommand(console, error, env).RunAsync(intent, parse.GetValue(repo), parse.GetValue(state), null, parse.GetValue(actor), null,
                    buildImage: true, json: parse.GetValue(output) == "json", confirmed: parse.GetValue(yes), ct);
            }
            finally
            {
                if (code != ExitCodes.Success || intent.DryRun)
                {
                    snapshot.Restore();
                    error.WriteLine($"capstan: train: {versionsFile} and the images values file are as they were{(intent.DryRun ? " (dry run)" : ": the move did not go through")}");
                }
            }

            if (code == ExitCodes.Success && !intent.DryRun)
            {
                (parse.GetValue(output) == "json" ? error : writer).WriteLine($"the train is at {move.Stop}: {string.Join(", ", move.Changes.Select(c => $"{c.Group} on {c.To}"))}");
            }

            return code;
        });
        return command;
    }

    private Command BuildBlock(bool block)
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason(block ? "Why (a task URL, say): shown to whoever tries to move the train forward (required)" : "Why the blocker is lifted (required)");
        reason.Required = true;
        var actor = CommonOptions.Actor();
        var command = new Command(block ? "block" : "unblock", block ? "Record a blocker: the train may not move forward until it is lifted (backward moves stay allowed)" : "Lift the train's blocker") { repo, state, reason, actor };
        command.SetAction(async (parse, ct) =>
        {
            Core.Diagnostics.FreeText.Check("the reason", parse.GetValue(reason));
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = repoSession.OpenState(parse.GetValue(state));
            await using (store)
            {
                var train = new TrainService(repoSession.Model, repoSession.Files, store, TimeProvider.System);
                var writer = console.Profile.Out.Writer;
                if (block)
                {
                    var blocker = await train.BlockAsync(repoSession.Actor(parse.GetValue(actor)), parse.GetValue(reason)!, ct);
                    writer.WriteLine($"the train is blocked: {Core.Diagnostics.FreeText.Printable(blocker.ToString())}");
                }
                else if (await train.UnblockAsync(ct) is { } lifted)
                {
                    writer.WriteLine($"the blocker of {Core.Diagnostics.FreeText.Printable(lifted.Actor)} is lifted ({Core.Diagnostics.FreeText.Printable(parse.GetValue(reason)!)})");
                }
                else
                {
                    writer.WriteLine("the train was not blocked");
                }

                return ExitCodes.Success;
            }
        });
        return command;
    }

    private static void Print(TextWriter writer, TrainStatus status)
    {
        var (map, imageVersions, blocker, live) = (status.Map, status.ImageVersions, status.Blocker, status.Live);
        var table = new PlainTable("GROUP", "WIKIS", "VERSION");
        foreach (var group in map.Groups)
        {
            table.Add(group.Name, group.Wikis.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                string.Join(", ", map.VersionsOf(group).Select(v => map.VersionsOf(group).Count == 1 ? v.Version : $"{v.Version} ({v.Wikis})")));
        }

        writer.Write(table.ToString());
        writer.WriteLine($"the train is at {status.Position}");
        writer.WriteLine($"versions in the image: {string.Join(", ", imageVersions)}");
        writer.WriteLine(blocker is null ? "blocked: no" : $"blocked: {Core.Diagnostics.FreeText.Printable(blocker.ToString())}");
        if (live is null)
        {
            return;
        }

        if (live.Images.Count == 0)
        {
            writer.WriteLine("pods: no MediaWiki pod runs");
            return;
        }

        var repoText = map.Versions.Write();
        foreach (var image in live.Images)
        {
            var what = image.Versions is null ? "wikiversions unknown: not an image of the farm's OCI layout" : image.Versions.Write() == repoText ? "wikiversions as in the repo" : "wikiversions differs from the repo's";
            var shown = image.Digest.StartsWith("sha256:", StringComparison.Ordinal) ? image.Digest[..19] + "…" : image.Digest;
            writer.WriteLine($"pods: {image.Pods} run {shown} ({what})");
        }

        writer.WriteLine(live.OneWikiVersions ? "every pod serves the same wikiversions" : "not every pod is known to serve the same wikiversions (see the images above)");
    }
}
