using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan mwscript</c> and <c>capstan repl</c>: run MediaWiki maintenance code in the clusters.</summary>
internal sealed class ScriptCommands(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command BuildMwscript()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var script = new Argument<string>("SCRIPT") { Description = "The maintenance script, relative to the MediaWiki tree (e.g. purgeParserCache.php, extensions/X/maintenance/y.php)" };
        var arguments = new Argument<string[]>("ARGS") { Description = "The script's arguments, after '--'; passed as they are, never through a shell", Arity = ArgumentArity.ZeroOrMore };
        var wiki = new Option<string?>("--wiki") { Description = "The wiki to run on (passed to the script as --wiki)", HelpName = "WIKI" };
        var dc = new Option<string?>("--dc") { Description = "The datacenter (default: the primary; another one needs --image)", HelpName = "DC" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Stream the script's log until its Job ends and exit with its status" };
        var image = new Option<string?>("--image") { Description = "Run with this MediaWiki image instead of the deployed one", HelpName = "REF" };
        var skip = new Option<bool>("--skip-if-not-allowed") { Description = "Exit 0 with a message when the state does not allow maintenance now (for scheduled callers)" };
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("mwscript", "Run a MediaWiki maintenance script once, as a Job in the script group (mw-script)")
        {
            repo, state, script, arguments, wiki, dc, follow, image, skip, actor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var writer = console.Profile.Out.Writer;
            var json = parse.GetValue(output) == "json";
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var dcName = parse.GetValue(dc);
            if (dcName is not null && !session.Model.DatacenterNames.Contains(dcName))
            {
                throw new UserInputException($"unknown datacenter '{dcName}' (known: {string.Join(", ", session.Model.DatacenterNames)})");
            }

            var request = new ScriptRequest(
                parse.GetValue(script)!, parse.GetValue(wiki), parse.GetValue(arguments) ?? [], dcName, parse.GetValue(image), session.Actor(parse.GetValue(actor)));
            Func<CancellationToken, Task<Core.State.DynamicState>> readState = c => session.ReadStateAsync(null, parse.GetValue(state), c);

            // Refuse before connecting to any cluster: the state alone decides (and an unreadable state refuses too).
            var current = await readState(ct);
            if (ScriptRunner.Refusal(current, dcName ?? current.PrimaryDc, request.Image is not null) is { } refusal)
            {
                return NotAllowed(refusal, parse.GetValue(skip));
            }

            var dcs = new[] { dcName ?? current.PrimaryDc };
            await using var clusters = await ClusterSet.ConnectAsync(session.Model, dcs, env.Get, new LocalCluster.LocalClusterOptions { SeedImages = () => Core.Config.RepoImages.Named(session.Model) }, ct);
            var runner = new ScriptRunner(session.Model, session.Renderer, clusters);
            ScriptStarted started;
            try
            {
                started = await runner.StartAsync(request, current, readState, ct);
            }
            catch (ScriptNotAllowedException ex)
            {
                return NotAllowed(ex.Message, parse.GetValue(skip));
            }
            catch (PreflightException ex)
            {
                foreach (var problem in ex.Problems)
                {
                    error.WriteLine($"capstan: error: {problem}");
                }

                return ExitCodes.UserError;
            }

            if (json)
            {
                writer.WriteLine(new JsonObject
                {
                    ["datacenter"] = started.Datacenter,
                    ["namespace"] = started.Namespace,
                    ["release"] = started.Release,
                    ["job"] = started.Job,
                    ["argv"] = new JsonArray([.. started.Argv.Select(a => (JsonNode?)a)]),
                }.ToJsonString());
            }
            else
            {
                writer.WriteLine($"started job {started.Namespace}/{started.Job} in {started.Datacenter} (release {started.Release})");
                writer.WriteLine($"  its log: kubectl -n {started.Namespace} logs -f job/{started.Job} -c mediawiki-{started.Release}-app");
            }

            writer.Flush();
            if (!parse.GetValue(follow))
            {
                return ExitCodes.Success;
            }

            ScriptOutcome outcome;
            try
            {
                outcome = await runner.FollowAsync(started, line =>
                {
                    writer.WriteLine(line);
                    writer.Flush();
                }, TimeProvider.System, ct);
            }
            catch (ScriptNotAllowedException ex)
            {
                error.WriteLine($"capstan: {ex.Message}");
                return ExitCodes.Failure;
            }

            error.WriteLine($"capstan: {outcome.Detail}");
            return outcome.ExitCode;
        });
        return command;
    }

    public Command BuildRepl()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var wikiArgument = new Argument<string?>("WIKI") { Description = "The wiki (the same as --wiki)", Arity = ArgumentArity.ZeroOrOne };
        var wiki = new Option<string?>("--wiki", "-w") { Description = "The wiki to open the shell on", HelpName = "WIKI" };
        var dc = new Option<string?>("--dc", "-d") { Description = "The datacenter (default: the primary)", HelpName = "DC" };
        var eval = new Option<bool>("--eval", "-e") { Description = "Start eval.php instead of shell.php" };
        var command = new Command("repl", "Open a MediaWiki shell (shell.php, or eval.php with -e) in a ready pod of the debug group")
        {
            repo, state, wikiArgument, wiki, dc, eval,
        };
        command.SetAction(async (parse, ct) =>
        {
            var wikiName = parse.GetValue(wiki) ?? parse.GetValue(wikiArgument);
            if (string.IsNullOrWhiteSpace(wikiName))
            {
                error.WriteLine("capstan: error: a wiki should be provided on the command line");
                error.WriteLine();
                error.WriteLine("Usage: capstan repl [-e] [-d DC] [-w WIKI | WIKI]");
                error.WriteLine("  capstan repl enwiki                 shell.php for enwiki in the primary datacenter");
                error.WriteLine("  capstan repl -e -d eqiad --wiki itwiki  eval.php for itwiki in eqiad");
                return ExitCodes.UserError;
            }

            var session = RepoSession.Open(env, parse.GetValue(repo));
            var current = await session.ReadStateAsync(null, parse.GetValue(state), ct);
            var dcName = parse.GetValue(dc) ?? current.PrimaryDc;
            if (!session.Model.DatacenterNames.Contains(dcName))
            {
                throw new UserInputException($"unknown datacenter '{dcName}' (known: {string.Join(", ", session.Model.DatacenterNames)})");
            }

            var (group, release) = DebugRelease(session.Model);
            error.WriteLine($"Finding a {group.Namespace} pod in {dcName}...");
            await using var clusters = await ClusterSet.ConnectAsync(session.Model, [dcName], env.Get, new LocalCluster.LocalClusterOptions { SeedImages = () => Core.Config.RepoImages.Named(session.Model) }, ct);
            var pods = (await clusters[dcName].ListAsync("v1", "Pod", group.Namespace, $"deployment={group.Namespace},release={release.Name}", ct)).Items;
            var ready = pods.FirstOrDefault(p => p["metadata"]?["deletionTimestamp"] is null &&
                (p["status"]?["conditions"] as JsonArray ?? []).Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True"));
            if (ready is null)
            {
                error.WriteLine($"capstan: error: no ready pod of {group.Namespace}/{release.Name} in {dcName} ({pods.Count} pods); deploy it with 'capstan deploy --dc {dcName} -n {group.Namespace}'");
                return ExitCodes.Failure;
            }

            var podName = ready.Kube.Name;
            var shell = parse.GetValue(eval) ? "eval.php" : "shell.php";
            string[] inPod = ["php", ScriptRun.MwScript, shell, "--wiki=" + wikiName];
            var cluster = session.Model.Datacenters.First(d => d.Name == dcName).Cluster;
            if (cluster.StartsWith("local://", StringComparison.Ordinal))
            {
                error.WriteLine($"capstan: error: {cluster} is the embedded cluster: its pods run no processes, so there is no shell to enter (found pod/{podName}).");
                error.WriteLine($"capstan: on a real cluster this runs: kubectl exec -it -n {group.Namespace} {podName} -c mediawiki-{release.Name}-app -- {string.Join(' ', inPod)}");
                return ExitCodes.Failure;
            }

            var kubectl = FindOnPath(env, "kubectl") ?? throw new UserInputException("kubectl is not installed; install it (Debian: apt-get install kubernetes-client) and run again");
            error.WriteLine($"Now running {shell} for {wikiName} inside pod/{podName}...");
            var psi = new ProcessStartInfo(kubectl) { UseShellExecute = false };
            var context = cluster["kube://".Length..];
            if (context.Length > 0)
            {
                psi.ArgumentList.Add("--context");
                psi.ArgumentList.Add(context);
            }

            foreach (var arg in (string[])["exec", "-it", "-n", group.Namespace, podName, "-c", $"mediawiki-{release.Name}-app", "--", .. inPod])
            {
                psi.ArgumentList.Add(arg);
            }

            using var child = Process.Start(psi)!;
            await child.WaitForExitAsync(ct);
            return child.ExitCode;
        });
        return command;
    }

    private static (ServerGroup Group, ReleaseSpec Release) DebugRelease(FarmModel model)
    {
        foreach (var group in model.Groups.OrderBy(g => g.Namespace == "mw-debug" ? 0 : 1))
        {
            if (group.Releases.FirstOrDefault(r => r.Stage == Stage.Testservers && r.Kind == ReleaseKind.MediaWiki) is { } release)
            {
                return (group, release);
            }
        }

        throw new UserInputException("the repo has no debug release (a MediaWiki release in stage testservers, such as mw-debug/pinkunicorn)");
    }

    private static string? FindOnPath(CliEnvironment env, string name) =>
        (env.Get("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    private int NotAllowed(string message, bool skip)
    {
        error.WriteLine($"capstan: {(skip ? "skipped" : "not allowed")}: {message}");
        return skip ? ExitCodes.Success : ExitCodes.NotAllowed;
    }
}
