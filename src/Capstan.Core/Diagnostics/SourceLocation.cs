namespace Capstan.Core.Diagnostics;

/// <summary>A place in a file of the deployment repo: a path relative to the repo root, 1-based line and column.</summary>
public sealed record SourceLocation(string File, int Line, int Column)
{
    /// <summary>A location for a whole file, before any content has been read.</summary>
    public static SourceLocation OfFile(string file) => new(file, 1, 1);

    /// <inheritdoc/>
    public override string ToString() => $"{File}:{Line}:{Column}";
}
