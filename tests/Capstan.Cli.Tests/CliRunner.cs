using Spectre.Console;

namespace Capstan.Cli.Tests;

/// <summary>Runs the CLI in-process with captured output and an injected environment.</summary>
internal static class CliRunner
{
    public static string Root { get; } = FindRoot();

    public static string ExampleFarm => Path.Combine(Root, "examples", "wikifarm");

    /// <summary>Copies the example farm (without local state) into a directory, for tests that deploy or write.</summary>
    public static string CopyFarm(string into) => Capstan.Testing.FarmCopy.To(ExampleFarm, into);

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

    /// <summary>Lets the repo's local clusters pull these images, as pushing them to a real registry would (<c>capstan local images add</c>).</summary>
    public static void Publish(string repo, params string[] images)
    {
        var added = Run(["local", "images", "add", .. images, "--repo", repo]);
        if (added.ExitCode != 0)
        {
            throw new InvalidOperationException("capstan local images add failed: " + added.Err);
        }
    }

    /// <summary>Runs the CLI as a child process (to be killed); stdout is collected as it comes.</summary>
    public static ChildRun StartChild(IReadOnlyDictionary<string, string> variables, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "capstan.dll"));
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in variables)
        {
            psi.Environment[key] = value;
        }

        return new ChildRun(System.Diagnostics.Process.Start(psi)!);
    }

    /// <summary>A CLI child process and what it printed so far.</summary>
    public sealed class ChildRun : IDisposable
    {
        private readonly System.Text.StringBuilder _output = new();

        public ChildRun(System.Diagnostics.Process process)
        {
            Process = process;
            process.OutputDataReceived += (_, e) =>
            {
                lock (_output)
                {
                    _output.AppendLine(e.Data);
                }
            };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public System.Diagnostics.Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>Waits until the output holds <paramref name="text"/>; fails the test after <paramref name="seconds"/>.</summary>
        public async Task WaitForAsync(string text, int seconds)
        {
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the child never printed '{text}': {Output}");
                await Task.Delay(20);
            }
        }

        public async Task KillAsync()
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }

        /// <summary>Stops the child if it still runs (a test that ends early leaves no server behind), then frees it.</summary>
        public void Dispose()
        {
            try
            {
                if (!Process.HasExited)
                {
                    Process.Kill(entireProcessTree: true);
                    Process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
                // It was never started, or is gone already.
            }

            Process.Dispose();
        }
    }

    /// <summary>Starts a long-running command; its output is read while it runs and it stops when cancelled.</summary>
    public static (Task<int> Running, Func<string> Out) Start(CancellationToken cancellationToken, params string[] args)
    {
        var (running, output, _) = Start(null, cancellationToken, args);
        return (running, output);
    }

    /// <summary>Runs the CLI in-process until it ends or the token is cancelled (Ctrl-C); stdout and stderr as they come.</summary>
    public static (Task<int> Running, Func<string> Out, Func<string> Err) Start(IReadOnlyDictionary<string, string>? variables, CancellationToken cancellationToken, params string[] args)
    {
        var stdout = new SynchronizedWriter();
        var stderr = new SynchronizedWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        var env = new CliEnvironment(Root, variables ?? new Dictionary<string, string>());
        var running = Task.Run(() => new CliApp(console, stderr, env).RunAsync(args, cancellationToken), CancellationToken.None);
        return (running, stdout.Text, stderr.Text);
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
