using System.Collections.Immutable;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;

namespace Capstan.Core.Rendering;

/// <summary>The labels every rendered object carries, and the real system's pod labels.</summary>
public static class ObjectLabels
{
    /// <summary>The label that ties an object to the Capstan release that owns it.</summary>
    public const string ReleaseLabel = "capstan.dev/release";

    /// <summary>The managed-by value that marks Capstan's objects.</summary>
    public const string ManagedBy = "capstan";

    /// <summary>The standard <c>app.kubernetes.io/*</c> labels plus Capstan's release label.</summary>
    public static ImmutableSortedDictionary<string, string> Common(string project, string ns, string release, ReleaseKind kind) =>
        SortedMap.Of(
            ("app.kubernetes.io/name", KindWord(kind)),
            ("app.kubernetes.io/instance", release),
            ("app.kubernetes.io/component", ns),
            ("app.kubernetes.io/part-of", project),
            ("app.kubernetes.io/managed-by", ManagedBy),
            (ReleaseLabel, release));

    /// <summary>The word for a release kind, as written in group files.</summary>
    public static string KindWord(ReleaseKind kind) => kind switch
    {
        ReleaseKind.StatsdExporter => "statsd-exporter",
        ReleaseKind.MediaWikiCommon => "mediawiki-common",
        ReleaseKind.Manifests => "manifests",
        _ => "mediawiki",
    };

    /// <summary>Adds the common labels to an object's labels (the object's own labels win).</summary>
    public static IKubeObject Apply(IKubeObject obj, ImmutableSortedDictionary<string, string> common)
    {
        var labels = obj.Metadata.Labels is { } own ? common.SetItems(own) : common;
        return obj.WithMetadata(obj.Metadata with { Labels = labels });
    }
}
