using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace Capstan.Core.Kubernetes;

/// <summary>An apps/v1 Deployment.</summary>
public sealed record Deployment([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, DeploymentSpec Spec) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "apps/v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "Deployment";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>The spec of a Deployment (no <c>replicas</c> when an autoscaler owns them).</summary>
public sealed record DeploymentSpec(
    int? Replicas,
    LabelSelector Selector,
    DeploymentStrategy Strategy,
    PodTemplateSpec Template,
    int? ProgressDeadlineSeconds = null,
    int? RevisionHistoryLimit = null,
    int? MinReadySeconds = null);

/// <summary>A label selector (equality only; Capstan needs no expressions).</summary>
public sealed record LabelSelector(ImmutableSortedDictionary<string, string> MatchLabels);

/// <summary><c>RollingUpdate</c> with surge and unavailability, or <c>Recreate</c>.</summary>
public sealed record DeploymentStrategy(string Type, RollingUpdateDeployment? RollingUpdate = null)
{
    /// <summary>Kill every old pod before starting new ones (canaries).</summary>
    public static DeploymentStrategy Recreate { get; } = new("Recreate");

    /// <summary>A rolling update.</summary>
    public static DeploymentStrategy Rolling(IntOrString maxSurge, IntOrString maxUnavailable) =>
        new("RollingUpdate", new RollingUpdateDeployment(maxSurge, maxUnavailable));
}

/// <summary>Surge and unavailability of a rolling update.</summary>
public sealed record RollingUpdateDeployment(IntOrString MaxSurge, IntOrString MaxUnavailable);

/// <summary>A batch/v1 Job.</summary>
public sealed record Job([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, JobSpec Spec) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "batch/v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "Job";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>The spec of a Job.</summary>
public sealed record JobSpec(
    PodTemplateSpec Template,
    int? BackoffLimit = null,
    int? TtlSecondsAfterFinished = null,
    long? ActiveDeadlineSeconds = null);

/// <summary>A batch/v1 CronJob.</summary>
public sealed record CronJob([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, CronJobSpec Spec) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "batch/v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "CronJob";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>The spec of a CronJob.</summary>
public sealed record CronJobSpec(
    string Schedule,
    string ConcurrencyPolicy,
    bool Suspend,
    int SuccessfulJobsHistoryLimit,
    int FailedJobsHistoryLimit,
    JobTemplateSpec JobTemplate,
    string? TimeZone = null);

/// <summary>The Job template of a CronJob.</summary>
public sealed record JobTemplateSpec(TemplateMeta? Metadata, JobSpec Spec);

/// <summary>A networking.k8s.io/v1 NetworkPolicy.</summary>
public sealed record NetworkPolicy([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, NetworkPolicySpec Spec) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "networking.k8s.io/v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "NetworkPolicy";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>The spec of a NetworkPolicy.</summary>
public sealed record NetworkPolicySpec(
    LabelSelector PodSelector,
    IReadOnlyList<string> PolicyTypes,
    IReadOnlyList<NetworkPolicyRule>? Ingress = null,
    IReadOnlyList<NetworkPolicyRule>? Egress = null);

/// <summary>An ingress or egress rule: peers (<c>from</c> for ingress, <c>to</c> for egress) and ports.</summary>
public sealed record NetworkPolicyRule(
    IReadOnlyList<NetworkPolicyPeer>? From = null,
    IReadOnlyList<NetworkPolicyPeer>? To = null,
    IReadOnlyList<NetworkPolicyPort>? Ports = null);

/// <summary>A peer of a rule.</summary>
public sealed record NetworkPolicyPeer(IpBlock? IpBlock = null, LabelSelector? NamespaceSelector = null, LabelSelector? PodSelector = null);

/// <summary>A CIDR.</summary>
public sealed record IpBlock(string Cidr);

/// <summary>A port of a rule.</summary>
public sealed record NetworkPolicyPort(string Protocol, IntOrString Port);
