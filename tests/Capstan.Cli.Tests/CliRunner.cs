using Spectre.Console;

namespace Capstan.Cli.Tests;

/// <summary>Runs the CLI in-process with captured output and an injected environment.</summary>
internal static class CliRunner
{
    public static string Root { get; } = FindRoot();

    public static string ExampleFarm => Path.Combine(Root, "examples", "wikifarm");

    /// <summary>Copies the example farm (without local state) into a directory, for tests that deploy or write.</summary>
    public static string CopyFarm(string into)
    {
        foreach (var file in Directory.EnumerateFiles(ExampleFarm, "*", SearchOption.AllDirectories).Where(f => !f.Contains(".capstan", StringComparison.Ordinal)))
        {
            var target = Path.Combine(into, Path.GetRelativePath(ExampleFarm, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return into;
    }

    public sealed record Result(int ExitCode, string Out, string Err);

    public static Result Run(IReadOnlyDictionary<string, string>? variables, params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        var env = new CliEnvironment(Root, variables ?? new Dictionary<string, string>());
        var code = new CliApp(console, stderr, env).Run(args);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    public static Result Run(params string[] args) => Run(null, args);

    /// <summary>Starts a long-running command; its output is read while it runs and it stops when cancelled.</summary>
    public static (Task<int> Running, Func<string> Out) Start(CancellationToken cancellationToken, params string[] args)
    {
        var stdout = new SynchronizedWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        var env = new CliEnvironment(Root, new Dictionary<string, string>());
        var running = Task.Run(() => new CliApp(console, TextWriter.Null, env).RunAsync(args, cancellationToken), CancellationToken.None);
        return (running, stdout.Text);
    }

    private sealed class SynchronizedWriter : StringWriter
    {
        private readonly Lock _lock = new();

        public override void Write(char value)
        {
            lock (_lock)
            {
                base.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_lock)
            {
                base.Write(value);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (_lock)
            {
                base.WriteLine(value);
            }
        }

        public string Text()
        {
            lock (_lock)
            {
                return ToString();
            }
        }
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find the checkout root above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary directory removed at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "capstan-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
