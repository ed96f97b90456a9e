using Capstan.Cli;
using Spectre.Console;

var console = AnsiConsole.Create(new AnsiConsoleSettings
{
    Out = new AnsiConsoleOutput(Console.Out),
    Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
    ColorSystem = Console.IsOutputRedirected || Environment.GetEnvironmentVariable("NO_COLOR") is { Length: > 0 }
        ? ColorSystemSupport.NoColors
        : ColorSystemSupport.Detect,
});

return await new CliApp(console, Console.Error, CliEnvironment.FromProcess()).RunAsync(args, CancellationToken.None);
