namespace Capstan.Core.Diagnostics;

/// <summary>How bad a finding is: errors stop the command, warnings are printed and the command goes on.</summary>
public enum Severity
{
    /// <summary>Printed, the command goes on.</summary>
    Warning,

    /// <summary>The command stops and changes nothing.</summary>
    Error,
}

/// <summary>One finding about the deployment repo, tied to the place that caused it.</summary>
public sealed record Diagnostic(Severity Severity, SourceLocation Location, string Message)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Location}: {(Severity == Severity.Error ? "error" : "warning")}: {Message}";
}

/// <summary>Collects findings while a repo is read, so a user sees every problem at once instead of one per run.</summary>
public sealed class DiagnosticBag
{
    private readonly List<Diagnostic> _items = [];

    /// <summary>All findings, errors and warnings, in the order they were found.</summary>
    public IReadOnlyList<Diagnostic> Items => _items;

    /// <summary>True when at least one error was found.</summary>
    public bool HasErrors => _items.Exists(d => d.Severity == Severity.Error);

    /// <summary>Records an error.</summary>
    public void Error(SourceLocation location, string message) => _items.Add(new Diagnostic(Severity.Error, location, message));

    /// <summary>Records a warning.</summary>
    public void Warning(SourceLocation location, string message) => _items.Add(new Diagnostic(Severity.Warning, location, message));

    /// <summary>Errors sorted by file, line and column; the order a user reads them in.</summary>
    public IReadOnlyList<Diagnostic> Sorted() =>
        [.. _items.OrderBy(d => d.Location.File, StringComparer.Ordinal)
            .ThenBy(d => d.Location.Line)
            .ThenBy(d => d.Location.Column)];
}

/// <summary>Thrown when the deployment repo or a value in it is invalid; carries every finding.</summary>
public sealed class RepoValidationException : CapstanException
{
    /// <summary>Creates the exception from the findings of one load or render.</summary>
    public RepoValidationException(IReadOnlyList<Diagnostic> diagnostics)
        : base(RefusalKind.UserError, diagnostics.Count > 0 ? diagnostics[0].ToString() : "invalid deployment repo") =>
        Diagnostics = diagnostics;

    /// <inheritdoc/>
    public override string Display => string.Join("; ", Diagnostics.Select(d => d.ToString()));

    /// <summary>The findings, errors first in file order.</summary>
    public IReadOnlyList<Diagnostic> Diagnostics { get; }
}

/// <summary>A mistake in what the user asked for (an unknown datacenter, a missing file): one line, exit code 2.</summary>
public sealed class UserInputException(string message) : CapstanException(RefusalKind.UserError, message);
