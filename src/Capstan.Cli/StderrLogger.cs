using Microsoft.Extensions.Logging;

namespace Capstan.Cli;

/// <summary>
/// Log lines for a person, on stderr, in the CLI's own form: <c>capstan: CATEGORY: [warning: |error: |trace: ]message</c>.
/// Debug lines only when <c>CAPSTAN_TRACE=1</c>.
/// </summary>
internal sealed class StderrLoggerProvider(TextWriter error, LogLevel minimum) : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly TextWriter _error = error;
    private readonly LogLevel _minimum = minimum;

    /// <summary>The provider of a command's environment: debug lines only when <paramref name="trace"/>.</summary>
    public static StderrLoggerProvider For(TextWriter error, bool trace) => new(error, trace ? LogLevel.Debug : LogLevel.Information);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(StderrLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= provider._minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var level = logLevel switch
            {
                LogLevel.Trace or LogLevel.Debug => "trace: ",
                LogLevel.Warning => "warning: ",
                LogLevel.Error or LogLevel.Critical => "error: ",
                _ => string.Empty,
            };
            var line = $"capstan: {category}: {level}{formatter(state, exception)}{(exception is null ? string.Empty : $": {exception}")}";
            lock (provider._lock)
            {
                provider._error.WriteLine(line);
            }
        }
    }
}
