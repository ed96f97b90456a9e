namespace Capstan.Core.Config;

/// <summary>
/// The values layers, lowest first: a later layer wins over an earlier one. The order is the real system's and is
/// fixed; where each layer's files live is configured in <c>capstan.yaml</c> under <c>values:</c>.
/// </summary>
public enum ValuesLayer
{
    /// <summary>Generated infrastructure data: httpd vhosts, mcrouter pools, service-proxy listeners, logging, GeoIP.</summary>
    Infra,

    /// <summary>General per-datacenter settings.</summary>
    DcGeneral,

    /// <summary>MediaWiki settings shared by every group.</summary>
    Globals,

    /// <summary>One server group's settings.</summary>
    Group,

    /// <summary>Private values; the only layer allowed to set <c>secrets</c>.</summary>
    Secrets,

    /// <summary>Per-datacenter MediaWiki settings.</summary>
    DcGlobals,

    /// <summary>Per-datacenter settings of one group.</summary>
    DcGroup,

    /// <summary>One release's settings.</summary>
    Release,

    /// <summary>The file a deploy writes: the image references of a release.</summary>
    Images,
}

/// <summary>Where each values layer's files are, as path templates with <c>{dc}</c>, <c>{namespace}</c>, <c>{release}</c>.</summary>
public sealed record ValuesLayout(IReadOnlyDictionary<ValuesLayer, IReadOnlyList<string>> Templates)
{
    /// <summary>The names layers have in <c>capstan.yaml</c>, in layering order.</summary>
    public static IReadOnlyList<(string Name, ValuesLayer Layer)> LayerNames { get; } =
    [
        ("infra", ValuesLayer.Infra),
        ("dc-general", ValuesLayer.DcGeneral),
        ("globals", ValuesLayer.Globals),
        ("group", ValuesLayer.Group),
        ("secrets", ValuesLayer.Secrets),
        ("dc-globals", ValuesLayer.DcGlobals),
        ("dc-group", ValuesLayer.DcGroup),
        ("release", ValuesLayer.Release),
        ("images", ValuesLayer.Images),
    ];

    /// <summary>The layout used for layers <c>capstan.yaml</c> does not mention.</summary>
    public static ValuesLayout Default { get; } = new(new Dictionary<ValuesLayer, IReadOnlyList<string>>
    {
        [ValuesLayer.Infra] = ["values/infra/*.yaml"],
        [ValuesLayer.DcGeneral] = ["values/general-{dc}.yaml"],
        [ValuesLayer.Globals] = ["values/common.yaml"],
        [ValuesLayer.Group] = ["values/{namespace}.yaml"],
        [ValuesLayer.Secrets] = ["private/secrets.yaml"],
        [ValuesLayer.DcGlobals] = ["values/{dc}/common.yaml"],
        [ValuesLayer.DcGroup] = ["values/{dc}/{namespace}.yaml"],
        [ValuesLayer.Release] = ["values/{namespace}/{release}.yaml"],
        [ValuesLayer.Images] = ["deploy/images/{namespace}/{release}.yaml"],
    });

    /// <summary>The name of a layer as written in <c>capstan.yaml</c>.</summary>
    public static string NameOf(ValuesLayer layer) => LayerNames.First(l => l.Layer == layer).Name;

    /// <summary>The templates of a layer.</summary>
    public IReadOnlyList<string> For(ValuesLayer layer) => Templates.TryGetValue(layer, out var t) ? t : [];

    /// <summary>Expands a template for one release in one datacenter.</summary>
    public static string Expand(string template, string dc, string ns, string release) =>
        template.Replace("{dc}", dc, StringComparison.Ordinal)
            .Replace("{namespace}", ns, StringComparison.Ordinal)
            .Replace("{release}", release, StringComparison.Ordinal);
}
