namespace Capstan.Cli;

/// <summary>The process environment a command sees: working directory and variables. Injected so tests run in parallel.</summary>
public sealed record CliEnvironment(string CurrentDirectory, IReadOnlyDictionary<string, string> Variables)
{
    /// <summary>True when a person can answer questions (stdin and stdout are terminals).</summary>
    public bool Interactive { get; init; }

    /// <summary>Where answers to questions come from.</summary>
    public TextReader Input { get; init; } = TextReader.Null;

    /// <summary>Where notes and errors for a person go (stderr).</summary>
    public TextWriter Error { get; init; } = TextWriter.Null;

    /// <summary>The clock commands read the time from (the system's, unless a test gives another).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where components log (DeployService's trace, the dashboard's errors, the embedded cluster's): stderr.</summary>
    public Microsoft.Extensions.Logging.ILogger Logger(string area) => StderrLoggerProvider.For(Error, Get("CAPSTAN_TRACE") == "1").CreateLogger(area);

    /// <summary>Warnings already printed by this invocation (a repo opened twice warns once).</summary>
    internal HashSet<string> Warned { get; } = new(StringComparer.Ordinal);

    /// <summary>The real process environment.</summary>
    public static CliEnvironment FromProcess()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            variables[(string)entry.Key] = (string?)entry.Value ?? string.Empty;
        }

        return new CliEnvironment(Directory.GetCurrentDirectory(), variables)
        {
            Interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected,
            Input = Console.In,
            Error = Console.Error,
        };
    }

    /// <summary>A variable, or null when unset or empty.</summary>
    public string? Get(string name) => Variables.TryGetValue(name, out var value) && value.Length > 0 ? value : null;

    /// <summary>A path made absolute against the working directory.</summary>
    public string Resolve(string path) => Path.GetFullPath(Path.Combine(CurrentDirectory, path));
}
