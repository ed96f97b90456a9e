using Capstan.Core.Diagnostics;

namespace Capstan.Deploy;

/// <summary>
/// The errors a user can cause or meet while Capstan works on the farm — bad input, a refused or conflicting change, a
/// lock, a failed deploy, an unreachable or refusing cluster or store — each as the one line to show and its kind. The
/// command line, the dashboard and the loops that go on past one failing environment all ask here; anything that is
/// not a <see cref="CapstanException"/> is a bug.
/// </summary>
public static class Refusals
{
    /// <summary>The line and kind of a known error; null for anything else.</summary>
    public static (string Message, RefusalKind Kind)? Classify(Exception ex) =>
        ex is CapstanException known ? (known.Display, known.Kind) : null;
}
