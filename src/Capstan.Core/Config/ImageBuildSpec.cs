using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// How the MediaWiki image is built (<c>image:</c> in capstan.yaml): the code trees (one per MediaWiki version), the
/// config tree, where they go in the image, the layering plan, flavours, compression and the fixed timestamp.
/// </summary>
public sealed record ImageBuildSpec(
    string Name,
    string Root,
    IReadOnlyList<ImageSource> Sources,
    string? Config,
    long? Epoch,
    IReadOnlyList<LayerRule> Layers,
    IReadOnlyList<ImageFlavour> Flavours,
    string Compression)
{
    /// <summary>
    /// The registry name of images kept in the farm's own OCI layout (<c>registry: oci-layout://…</c>): pods refer to
    /// them as <c>capstan.local/NAME:TAG@DIGEST</c>, and the embedded cluster looks them up in that layout.
    /// </summary>
    public const string LocalRegistry = "capstan.local";

    /// <summary>
    /// For an image of the farm's own layout (<c>capstan.local/NAME[:TAG][@DIGEST]</c>), what to look up there: the
    /// digest when there is one, else the tag (<c>latest</c> when none); null for any other image.
    /// </summary>
    public static string? LocalReference(string image)
    {
        if (!image.StartsWith(LocalRegistry + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var name = image[(LocalRegistry.Length + 1)..];
        var at = name.IndexOf('@', StringComparison.Ordinal);
        var colon = name.LastIndexOf(':');
        return at >= 0 ? name[(at + 1)..] : colon >= 0 ? name[(colon + 1)..] : "latest";
    }

    /// <summary>The layering plan used when the repo sets none: big, rarely changing parts first, hot parts last.</summary>
    public static IReadOnlyList<LayerRule> DefaultLayers { get; } =
    [
        new("vendor", ["vendor/"]),
        new("l10n", ["languages/", "cache/l10n/"]),
        new("extensions-a-f", ["extensions/[A-Fa-f]*", "extensions-core/[A-Fa-f]*"]),
        new("extensions-g-m", ["extensions/[G-Mg-m]*", "extensions-core/[G-Mg-m]*"]),
        new("extensions-n-s", ["extensions/[N-Sn-s]*", "extensions-core/[N-Sn-s]*"]),
        new("extensions-t-z", ["extensions/*", "extensions-core/*"]),
        new("skins", ["skins/"]),
        new("resources", ["resources/"]),
        new("core", ["*"]),
        new("includes", ["includes/"]) { SplitFiles = 256, SplitBytes = 1_500_000 },
    ];

    /// <summary>The spec used when the repo has no <c>image:</c> section.</summary>
    public static ImageBuildSpec Default { get; } = new("mediawiki", "srv/mediawiki", [], null, null, DefaultLayers, [new ImageFlavour("default", [], new Dictionary<string, string>())], "gzip");

    private static readonly string[] Keys = ["name", "root", "sources", "config", "epoch", "layers", "flavours", "compression"];
    private static readonly string[] LayerKeys = ["name", "paths", "split-files", "split-bytes"];
    private static readonly string[] FlavourKeys = ["exclude", "labels"];

    /// <summary>Reads the <c>image:</c> section (null node: the defaults).</summary>
    public static ImageBuildSpec Read(NodeReader reader, ValueNode? node)
    {
        var map = reader.Map(node, "image", Keys);
        if (map is null)
        {
            return Default;
        }

        var name = reader.String(map["name"], "image.name") ?? Default.Name;
        var root = (reader.String(map["root"], "image.root") ?? Default.Root).Trim('/');
        var sources = new List<ImageSource>();
        if (reader.Map(map["sources"], "image.sources") is { } sourceMap)
        {
            foreach (var entry in sourceMap.Entries)
            {
                if (entry.Key.Contains('/', StringComparison.Ordinal) || entry.Key is "." or "..")
                {
                    reader.Diagnostics.Error(entry.KeyLocation, $"image source name '{entry.Key}' must be a directory name such as php-1.42");
                    continue;
                }

                if (reader.String(entry.Value, $"image.sources.{entry.Key}") is { } path)
                {
                    sources.Add(new ImageSource(entry.Key, path));
                }
            }
        }

        var layers = new List<LayerRule>();
        if (map["layers"] is { } layersNode)
        {
            if (layersNode is not ValueList list)
            {
                reader.Diagnostics.Error(layersNode.Location, $"image.layers must be a list of {{name, paths}}, not {layersNode.Describe()}");
            }
            else
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var item in list.Items)
                {
                    var layer = reader.Map(item, "a layer of image.layers", LayerKeys);
                    var layerName = reader.String(layer?["name"], "image.layers[].name");
                    var paths = reader.StringList(layer?["paths"], "image.layers[].paths", allowSingle: true);
                    if (layer is not null && layerName is null)
                    {
                        reader.Missing(layer, "name", "a layer of image.layers");
                    }

                    if (layerName is not null && !seen.Add(layerName))
                    {
                        reader.Diagnostics.Error(item.Location, $"image.layers has two layers named '{layerName}'");
                    }

                    if (layerName is not null && paths is not null)
                    {
                        layers.Add(new LayerRule(layerName, paths)
                        {
                            SplitFiles = reader.Int(layer?["split-files"], "image.layers[].split-files", min: 1),
                            SplitBytes = reader.Int(layer?["split-bytes"], "image.layers[].split-bytes", min: 1),
                        });
                    }
                }

                if (!layers.Any(l => l.Paths.Contains("*")))
                {
                    reader.Diagnostics.Error(layersNode.Location, "image.layers needs one layer with the path '*' for everything no other layer takes");
                }
            }
        }

        var flavours = new List<ImageFlavour>();
        if (reader.Map(map["flavours"], "image.flavours") is { } flavourMap)
        {
            foreach (var entry in flavourMap.Entries)
            {
                var flavour = entry.Value is ValueScalar { IsNull: true } ? null : reader.Map(entry.Value, $"image.flavours.{entry.Key}", FlavourKeys);
                var exclude = reader.StringList(flavour?["exclude"], $"image.flavours.{entry.Key}.exclude") ?? [];
                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                if (reader.Map(flavour?["labels"], $"image.flavours.{entry.Key}.labels") is { } labelMap)
                {
                    foreach (var label in labelMap.Entries)
                    {
                        if (reader.String(label.Value, $"image.flavours.{entry.Key}.labels.{label.Key}", allowEmpty: true) is { } value)
                        {
                            labels[label.Key] = value;
                        }
                    }
                }

                flavours.Add(new ImageFlavour(entry.Key, exclude, labels));
            }
        }

        var compression = reader.String(map["compression"], "image.compression") ?? "gzip";
        if (compression is not ("gzip" or "zstd"))
        {
            reader.Diagnostics.Error(map["compression"]!.Location, $"image.compression '{compression}' is not supported (allowed: gzip, zstd)");
        }

        long? epoch = null;
        if (map["epoch"] is { } epochNode)
        {
            if (reader.ScalarText(epochNode, "image.epoch") is { } text && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
            {
                epoch = seconds;
            }
            else
            {
                reader.Diagnostics.Error(epochNode.Location, "image.epoch must be a number of seconds since 1970 (like SOURCE_DATE_EPOCH)");
            }
        }

        return new ImageBuildSpec(
            name,
            root,
            sources,
            reader.String(map["config"], "image.config"),
            epoch,
            layers.Count > 0 ? layers : DefaultLayers,
            flavours.Count > 0 ? flavours : Default.Flavours,
            compression);
    }
}

/// <summary>One MediaWiki code tree: its directory name in the image (e.g. php-1.42) and where it is read from.</summary>
public sealed record ImageSource(string Version, string Path);

/// <summary>
/// One layer of the plan and the paths it takes, relative to a code tree: <c>dir/</c> is a whole directory,
/// <c>extensions/[A-F]*</c> a glob on the leading path segments, <c>*</c> everything no other layer takes.
/// </summary>
public sealed record LayerRule(string Name, IReadOnlyList<string> Paths)
{
    /// <summary>
    /// Cut the rule's files into several layers (hot parts, so a change re-pushes little): a layer ends after a file
    /// whose path hashes to 0 modulo this number, so the cuts depend on names only and stay put when contents change.
    /// </summary>
    public int? SplitFiles { get; init; }

    /// <summary>A layer also ends once it holds this many bytes of files (bounds the size of any one piece).</summary>
    public long? SplitBytes { get; init; }
}

/// <summary>A flavour of the image: the same code minus some layers, with labels of its own.</summary>
public sealed record ImageFlavour(string Name, IReadOnlyList<string> Exclude, IReadOnlyDictionary<string, string> Labels);
