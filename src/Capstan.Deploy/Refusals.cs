using Capstan.Core.Diagnostics;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>What kind of refusal an error is: it picks a command's exit code or a request's status.</summary>
public enum RefusalKind
{
    /// <summary>The user asked for something wrong (bad input, a refused state change, a bad kubeconfig).</summary>
    UserError,

    /// <summary>Someone else changed the same thing first.</summary>
    Conflict,

    /// <summary>Deploys are locked.</summary>
    Locked,

    /// <summary>The farm's state does not allow it now (a held release).</summary>
    NotAllowed,

    /// <summary>The work was tried and failed, or a cluster or store could not be used.</summary>
    Failure,
}

/// <summary>
/// The errors a user can cause or meet while Capstan works on the farm — bad input, a refused or conflicting change, a
/// lock, a failed deploy, an unreachable or refusing cluster or store — each as the one line to show and its kind. The
/// command line, the dashboard and the loops that go on past one failing environment all ask here; anything else is a
/// bug.
/// </summary>
public static class Refusals
{
    /// <summary>The line and kind of a known error; null for anything else.</summary>
    public static (string Message, RefusalKind Kind)? Classify(Exception ex) => ex switch
    {
        RepoValidationException invalid => (string.Join("; ", invalid.Diagnostics.Select(d => d.ToString())), RefusalKind.UserError),
        UserInputException => (ex.Message, RefusalKind.UserError),
        StateRefusedException => (ex.Message + "; nothing was written", RefusalKind.UserError),
        StateConflictException => (ex.Message, RefusalKind.Conflict),
        DeployLockedException => (ex.Message, RefusalKind.Locked),
        ReleaseHeldException => (ex.Message, RefusalKind.NotAllowed),
        Gates.GatePreflightException => (ex.Message + "; nothing was applied", RefusalKind.UserError),
        Gates.PrometheusException { BadQuery: true } => (ex.Message, RefusalKind.UserError),
        Gates.PrometheusException => (ex.Message, RefusalKind.Failure),
        PreflightException or ReleaseRecordException or DeployLockLostException or DeployLockCorruptException or DeployStoppedException or NotificationFailedException
            or DeployFailedException or PrePullException or SwitchoverFailedException or ApiOutageException => (ex.Message, RefusalKind.Failure),
        KubeUnavailableException => (ex.Message, RefusalKind.Failure),
        KubeCredentialException => ("cannot authenticate to the cluster: " + ex.Message, RefusalKind.Failure),
        KubeConfigException => (ex.Message, RefusalKind.UserError),
        KubeApiException => ("the cluster refused: " + ex.Message, RefusalKind.Failure),
        StateStoreException => (ex.Message, RefusalKind.Failure),
        _ => null,
    };
}
