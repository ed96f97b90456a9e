namespace Capstan.Core.Diagnostics;

/// <summary>What kind of refusal an error is: it picks a command's exit code or a request's status.</summary>
public enum RefusalKind
{
    /// <summary>The user asked for something wrong (bad input, a refused state change, a bad kubeconfig).</summary>
    UserError,

    /// <summary>Someone else changed the same thing first.</summary>
    Conflict,

    /// <summary>Deploys are locked.</summary>
    Locked,

    /// <summary>The farm's state does not allow it now (a held release, a script while read-only).</summary>
    NotAllowed,

    /// <summary>The work was tried and failed, or a cluster, store or registry could not be used.</summary>
    Failure,
}

/// <summary>
/// The base of every error a user can cause or meet while Capstan works on the farm: each carries its kind (which picks
/// the exit code or the HTTP status) and the one line to show. Anything that is not one is a bug.
/// </summary>
public abstract class CapstanException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected CapstanException(RefusalKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>What kind of refusal it is.</summary>
    public RefusalKind Kind { get; }

    /// <summary>The one line to show (the message, unless the error says more).</summary>
    public virtual string Display => Message;
}
