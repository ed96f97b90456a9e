using System.CommandLine;
using Capstan.Cli.Commands;
using Capstan.Core.Diagnostics;
using Spectre.Console;

namespace Capstan.Cli;

/// <summary>
/// The capstan command line: builds the command tree, parses, runs the chosen command and turns user mistakes into
/// one clear line on stderr and exit code 2. Everything it touches is injected, so tests run it in-process.
/// </summary>
public sealed class CliApp(IAnsiConsole console, TextWriter error, CliEnvironment environment)
{
    private readonly CliEnvironment env = environment with { Error = error };

    /// <summary>Runs capstan with the given arguments and returns the exit code.</summary>
    public int Run(IReadOnlyList<string> args) => RunAsync(args, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Runs capstan with the given arguments and returns the exit code.</summary>
    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var root = new RootCommand("Capstan: render, plan, build, deploy, gate and switch over MediaWiki on Kubernetes")
        {
            new RenderCommand(console, error, env).Build(),
            new ValidateCommand(console, error, env).Build(),
            new ReleasesCommand(console, error, env).Build(),
            new StateCommand(console, error, env).Build(),
            new MaintenanceCommand(console, env).Build(),
            new LocalCommand(console, error, env).Build(),
            new DeployCommand(console, error, env).Build(),
            new DeployCommand(console, error, env).BuildBootstrap(),
            new SwitchoverCommand(console, error, env).Build(),
            new GateCommand(console, error, env).Build(),
            new ScriptCommands(console, error, env).BuildMwscript(),
            new ScriptCommands(console, error, env).BuildRepl(),
            new ImageCommand(console, error, env).Build(),
            new EnvCommand(console, error, env).Build(),
            new TrainCommand(console, error, env).Build(),
            new BackportCommand(console, error, env).Build(),
            new ServeCommand(console, error, env).Build(),
        };

        foreach (var command in new ReleaseCommands(console, error, env).Build().Concat(new LockCommands(console, error, env).Build()))
        {
            root.Add(command);
        }

        // No response files: an argument such as '@list' (a script argument, say) stays the string it is.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var config = new InvocationConfiguration
        {
            Output = console.Profile.Out.Writer,
            Error = error,
            EnableDefaultExceptionHandler = false,
        };
        if (parse.Errors.Count > 0)
        {
            var command = parse.CommandResult.Command;
            var path = CommandPath(parse.CommandResult);
            if (parse.UnmatchedTokens.FirstOrDefault() is { } unknown)
            {
                // One line for a mistyped word, with the nearest command or option of the command it was typed after.
                var kind = unknown.StartsWith('-') ? "option" : command.Subcommands.Count > 0 ? "command" : "argument";
                var candidates = unknown.StartsWith('-')
                    ? command.Options.SelectMany(o => o.Aliases.Prepend(o.Name))
                    : command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
                var nearest = Suggestions.Nearest(unknown, candidates);
                error.WriteLine($"capstan: unknown {kind} '{unknown}' for '{path}'" + (nearest is null ? string.Empty : $"; did you mean '{nearest}'?"));
            }
            else
            {
                foreach (var parseError in parse.Errors)
                {
                    error.WriteLine($"capstan: {parseError.Message}");
                }
            }

            error.WriteLine($"Run '{path} --help' for usage.");
            return ExitCodes.UserError;
        }

        try
        {
            return await parse.InvokeAsync(config, cancellationToken);
        }
        catch (RepoValidationException ex)
        {
            foreach (var diagnostic in ex.Diagnostics)
            {
                error.WriteLine(diagnostic.ToString());
            }

            var count = ex.Diagnostics.Count(d => d.Severity == Severity.Error);
            error.WriteLine($"capstan: {count} error{(count == 1 ? string.Empty : "s")}; nothing was changed");
            return ExitCodes.UserError;
        }
        catch (Exception ex) when (Known(ex) is { } known)
        {
            error.WriteLine($"capstan: error: {FreeText.Printable(known.Message)}");
            return known.Code;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("capstan: interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception ex) when (env.Get("CAPSTAN_DEBUG") is null)
        {
            // A bug, not a user mistake: say so in one line; CAPSTAN_DEBUG=1 lets the stack trace through.
            error.WriteLine($"capstan: internal error: {ex.GetType().Name}: {ex.Message} (set CAPSTAN_DEBUG=1 for details)");
            return ExitCodes.Failure;
        }
    }

    private static string CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (var current = result; current is not null; current = current.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Add(current.Command is RootCommand ? "capstan" : current.Command.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>
    /// The errors a user can cause or meet (bad input, a refused or conflicting state change, an unreachable cluster or
    /// store, a file problem): the one line to print and the exit code. Null for anything else, which is a bug.
    /// </summary>
    private static (string Message, int Code)? Known(Exception ex) => ex switch
    {
        IOException or UnauthorizedAccessException => (ex.Message, ExitCodes.Failure),
        _ => Capstan.Deploy.Refusals.Classify(ex) is { } refusal ? (refusal.Message, refusal.Kind switch
        {
            Capstan.Core.Diagnostics.RefusalKind.UserError => ExitCodes.UserError,
            Capstan.Core.Diagnostics.RefusalKind.Conflict => ExitCodes.Conflict,
            Capstan.Core.Diagnostics.RefusalKind.Locked => ExitCodes.Locked,
            Capstan.Core.Diagnostics.RefusalKind.NotAllowed => ExitCodes.NotAllowed,
            _ => ExitCodes.Failure,
        }) : null,
    };
}
