namespace Capstan.Cli;

/// <summary>What capstan's exit status means.</summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>Something outside the user's input failed (I/O, a server).</summary>
    public const int Failure = 1;

    /// <summary>The user's input is wrong: bad arguments, an invalid repo, an unknown release. Nothing was changed.</summary>
    public const int UserError = 2;

    /// <summary>Someone else changed the state between our read and our write; nothing was written. Run again.</summary>
    public const int Conflict = 3;

    /// <summary>Deploys are locked by someone else; nothing was changed.</summary>
    public const int Locked = 4;

    /// <summary>The dynamic state does not allow this now (read-only, maintenance disabled, a held release); nothing was started.</summary>
    public const int NotAllowed = 5;

    /// <summary>A deploy failed and so did the rollback of at least one release: the summary names what needs a repair.</summary>
    public const int RollbackFailed = 6;

    /// <summary>A gate between stages failed: the plan stopped, and every release it changed was rolled back and held.</summary>
    public const int GateFailed = 7;

    /// <summary>The command was interrupted (Ctrl-C), or its deploy was cancelled (what finished stays; run it again to continue).</summary>
    public const int Interrupted = 130;

    /// <summary>The exit code of a deploy's result: success, a failure that was rolled back, a failed gate, or a failed rollback.</summary>
    public static int Of(Capstan.Deploy.DeployResult result) =>
        result.Succeeded ? Success : result.RollbackFailed ? RollbackFailed : result.Cancelled is not null && !result.Releases.Any(r => r.State == Capstan.Deploy.ReleaseState.Failed) ? Interrupted : result.GateFailure is not null || result.Halted is not null ? GateFailed : Failure;
}
