using Capstan.Core.Config;
using Capstan.Core.Kubernetes;

namespace Capstan.Core.Rendering;

/// <summary>The objects of one release in one datacenter, in apply order.</summary>
public sealed record RenderedRelease(string Datacenter, string Namespace, string Release, ReleaseKind Kind, IReadOnlyList<IKubeObject> Objects)
{
    /// <summary>The test environment it was rendered for (its <see cref="Namespace"/> is then the environment's); null for production.</summary>
    public string? Environment { get; init; }

    /// <summary>The release as a farm-wide reference (its production namespace, for an environment's release).</summary>
    public ReleaseRef Ref => new(Environment is null ? Namespace : Namespace[(Environment.Length + Environments.EnvironmentNames.Separator.Length)..], Release);

    /// <summary>Where a release this one needs (by its farm-wide reference) lives beside it: the same environment, or production.</summary>
    public string NamespaceOf(ReleaseRef need) => Environment is null ? need.Namespace : Environments.EnvironmentNames.Namespace(Environment, need.Namespace);

    /// <summary>The display name <c>dc/namespace/release</c>.</summary>
    public string Id => $"{Datacenter}/{Namespace}/{Release}";
}

/// <summary>What to render: filters that narrow the farm (null means all).</summary>
public sealed record RenderSelection(string? Datacenter = null, string? Namespace = null, string? Release = null, string? Subset = null);

/// <summary>The output of a render: releases and, for each selected group and datacenter, its Namespace object.</summary>
public sealed record RenderResult(IReadOnlyList<RenderedRelease> Releases, IReadOnlyList<(string Datacenter, Kubernetes.Namespace Namespace)> Namespaces, IReadOnlyList<Values.MissingValuesFile> MissingValuesFiles);
