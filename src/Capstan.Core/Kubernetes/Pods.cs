using System.Collections.Immutable;

namespace Capstan.Core.Kubernetes;

/// <summary>A pod template: metadata and a pod spec.</summary>
public sealed record PodTemplateSpec(TemplateMeta Metadata, PodSpec Spec);

/// <summary>The metadata of a template: labels and annotations, no name.</summary>
public sealed record TemplateMeta(
    ImmutableSortedDictionary<string, string>? Labels = null,
    ImmutableSortedDictionary<string, string>? Annotations = null);

/// <summary>The part of a pod spec that Capstan writes.</summary>
public sealed record PodSpec(
    IReadOnlyList<Container> Containers,
    IReadOnlyList<Container>? InitContainers = null,
    IReadOnlyList<Volume>? Volumes = null,
    string? RestartPolicy = null,
    int? TerminationGracePeriodSeconds = null,
    bool? EnableServiceLinks = null);

/// <summary>
/// A container. <see cref="RestartPolicy"/> <c>Always</c> on an init container makes it a native sidecar,
/// which is how cli pods (Jobs, CronJobs) run their helpers without blocking completion.
/// </summary>
public sealed record Container(
    string Name,
    string Image,
    IReadOnlyList<string>? Command = null,
    IReadOnlyList<string>? Args = null,
    IReadOnlyList<EnvVar>? Env = null,
    IReadOnlyList<PortSpec>? Ports = null,
    ResourceRequirements? Resources = null,
    Probe? ReadinessProbe = null,
    Probe? LivenessProbe = null,
    IReadOnlyList<VolumeMount>? VolumeMounts = null,
    string? RestartPolicy = null,
    string? ImagePullPolicy = null);

/// <summary>An environment variable: a literal (which may hold <c>$(VAR)</c> references) or a reference.</summary>
public sealed record EnvVar(string Name, string? Value = null, EnvVarSource? ValueFrom = null);

/// <summary>Where an environment variable's value comes from.</summary>
public sealed record EnvVarSource(ObjectFieldSelector? FieldRef = null, KeySelector? SecretKeyRef = null, KeySelector? ConfigMapKeyRef = null);

/// <summary>A field of the pod, for example <c>metadata.name</c>.</summary>
public sealed record ObjectFieldSelector(string FieldPath);

/// <summary>A key of a Secret or ConfigMap.</summary>
public sealed record KeySelector(string Name, string Key);

/// <summary>A container port.</summary>
public sealed record PortSpec(string Name, int ContainerPort, string Protocol = "TCP");

/// <summary>Requests and limits; quantities as Kubernetes writes them ("200m", "3274Mi").</summary>
public sealed record ResourceRequirements(
    ImmutableSortedDictionary<string, string>? Requests = null,
    ImmutableSortedDictionary<string, string>? Limits = null);

/// <summary>A readiness or liveness probe.</summary>
public sealed record Probe(
    HttpGetAction? HttpGet = null,
    TcpSocketAction? TcpSocket = null,
    ExecAction? Exec = null,
    int? InitialDelaySeconds = null,
    int? PeriodSeconds = null,
    int? TimeoutSeconds = null,
    int? FailureThreshold = null);

/// <summary>An HTTP GET probe.</summary>
public sealed record HttpGetAction(string Path, IntOrString Port);

/// <summary>A TCP probe.</summary>
public sealed record TcpSocketAction(IntOrString Port);

/// <summary>An exec probe.</summary>
public sealed record ExecAction(IReadOnlyList<string> Command);

/// <summary>A volume mount.</summary>
public sealed record VolumeMount(string Name, string MountPath, bool? ReadOnly = null, string? SubPath = null);

/// <summary>A pod volume; exactly one source is set.</summary>
public sealed record Volume(
    string Name,
    ConfigMapVolumeSource? ConfigMap = null,
    SecretVolumeSource? Secret = null,
    EmptyDirVolumeSource? EmptyDir = null,
    HostPathVolumeSource? HostPath = null);

/// <summary>A ConfigMap mounted as files.</summary>
public sealed record ConfigMapVolumeSource(string Name);

/// <summary>A Secret mounted as files.</summary>
public sealed record SecretVolumeSource(string SecretName, int? DefaultMode = null);

/// <summary>A scratch directory shared by the pod's containers.</summary>
public sealed record EmptyDirVolumeSource(string? Medium = null);

/// <summary>A directory of the node (GeoIP data is distributed to nodes this way).</summary>
public sealed record HostPathVolumeSource(string Path, string? Type = null);
