using Capstan.Core.Config;
using Capstan.Core.Kubernetes;

namespace Capstan.Core.Rendering;

/// <summary>The objects of one release in one datacenter, in apply order.</summary>
public sealed record RenderedRelease(string Datacenter, string Namespace, string Release, ReleaseKind Kind, IReadOnlyList<IKubeObject> Objects)
{
    /// <summary>The release as a farm-wide reference.</summary>
    public ReleaseRef Ref => new(Namespace, Release);

    /// <summary>The display name <c>dc/namespace/release</c>.</summary>
    public string Id => $"{Datacenter}/{Namespace}/{Release}";
}

/// <summary>What to render: filters that narrow the farm (null means all).</summary>
public sealed record RenderSelection(string? Datacenter = null, string? Namespace = null, string? Release = null, string? Environment = null);

/// <summary>The output of a render: releases and, for each selected group and datacenter, its Namespace object.</summary>
public sealed record RenderResult(IReadOnlyList<RenderedRelease> Releases, IReadOnlyList<(string Datacenter, Kubernetes.Namespace Namespace)> Namespaces, IReadOnlyList<Values.MissingValuesFile> MissingValuesFiles);
