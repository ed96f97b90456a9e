using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>One layer as built: where it came from, its digests and sizes, and whether an earlier build already had it.</summary>
public sealed record BuiltLayer(string Name, string DiffId, Descriptor Blob, long UncompressedSize, int Files, int Shared, bool Reused);

/// <summary>One flavour's image.</summary>
public sealed record BuiltFlavour(string Name, string Tag, Descriptor Manifest, Descriptor Config, IReadOnlyList<BuiltLayer> Layers);

/// <summary>What a build produced: the tag, the top descriptor (an index when there are several flavours) and each flavour.</summary>
public sealed record BuildResult(string Tag, Descriptor Top, IReadOnlyList<BuiltFlavour> Flavours, IReadOnlyList<string> Versions, string? SourceCommit, DateTimeOffset Created, TimeSpan Duration)
{
    /// <summary>Writes the build report to <paramref name="path"/> (default: report.json in the layout) and returns it.</summary>
    public async Task<JsonObject> WriteReportAsync(OciLayout layout, string? path, CancellationToken cancellationToken)
    {
        var report = Report("oci-layout://" + layout.Path);
        path ??= Path.Combine(layout.Path, "report.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, report.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        return report;
    }

    /// <summary>The build report (report.json).</summary>
    public JsonObject Report(string storeReference) => new()
    {
        ["tag"] = Tag,
        ["reference"] = $"{storeReference}:{Tag}",
        ["digest"] = Top.Digest,
        ["mediaType"] = Top.MediaType,
        ["versions"] = new JsonArray([.. Versions.Select(v => (JsonNode?)v)]),
        ["sourceCommit"] = SourceCommit,
        ["created"] = Created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["builder"] = ImageBuilder.BuilderName,
        ["seconds"] = Math.Round(Duration.TotalSeconds, 3),
        ["flavours"] = new JsonArray([.. Flavours.Select(f => (JsonNode)new JsonObject
        {
            ["name"] = f.Name,
            ["reference"] = $"{storeReference}:{f.Tag}",
            ["digest"] = f.Manifest.Digest,
            ["layers"] = new JsonArray([.. f.Layers.Select(l => (JsonNode)new JsonObject
            {
                ["name"] = l.Name,
                ["digest"] = l.Blob.Digest,
                ["diffId"] = l.DiffId,
                ["size"] = l.Blob.Size,
                ["uncompressedSize"] = l.UncompressedSize,
                ["files"] = l.Files,
                ["sharedWithEarlierVersion"] = l.Shared,
                ["reused"] = l.Reused,
            })]),
        })]),
    };
}

/// <summary>
/// Builds the MediaWiki image into an OCI layout: plans the layers, computes each layer's DiffID from its deterministic
/// tar (every core, one layer each), reuses a compressed blob when an earlier build had the same DiffID (the cache under
/// the layout's <c>capstan-cache/</c>), compresses the others with gzip on every core, and writes config, manifests, an
/// index when there are several flavours, and the tags.
/// </summary>
public sealed class ImageBuilder(OciLayout layout, IProgress<string>? progress = null)
{
    /// <summary>Read every file even when the stat cache knows the layer (paranoid, slower).</summary>
    public bool Verify { get; init; }

    /// <summary>The builder named in labels and reports.</summary>
    public static string BuilderName => "capstan " + (typeof(ImageBuilder).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    /// <summary>Builds and tags the image.</summary>
    public Task<BuildResult> BuildAsync(BuildInput input, string tag, CancellationToken cancellationToken) => BuildAsync(input, tag, null, cancellationToken);

    /// <summary>Builds and tags the image from trees as a watcher keeps them (see <see cref="ImageWatcher"/>), without walking them again.</summary>
    public async Task<BuildResult> BuildAsync(BuildInput input, string tag, ImageWatcher? watcher, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        CheckTag(tag);
        var plan = LayerPlanner.Plan(input, watcher is null ? null : watcher.Walk);
        progress?.Report($"planned {plan.Count} layers, {plan.Sum(l => l.Files)} files, {plan.Sum(l => l.ContentBytes) / (1024.0 * 1024):0.0} MiB ({plan.Sum(l => l.Shared)} files shared with an earlier version)");

        var statKeys = new string[plan.Count];
        Parallel.For(0, plan.Count, i => statKeys[i] = plan[i].StatKey());
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken };
        var built = new BuiltLayer?[plan.Count];

        // Nothing built into this layout yet: no layer can be reused, so each is hashed and compressed in one pass.
        // Otherwise, pass 1 finds every layer's DiffID (from the stat cache when nothing about its files changed, else
        // by hashing its tar) and pass 2 compresses only the layers no earlier build had.
        var mediaType = MediaTypes.Layer(input.Spec.Compression);
        var coldStore = !Directory.Exists(CacheDirectory(mediaType));
        var diffIds = new (string DiffId, long Size)[plan.Count];
        if (!coldStore)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, plan.Count), parallel, (i, _) =>
            {
                if (!Verify && StatCached(statKeys[i]) is { } known && Cached(known.DiffId, mediaType) is not null)
                {
                    diffIds[i] = known;
                    return ValueTask.CompletedTask;
                }

                using var hashing = new HashingStream(null);
                WriteTar(plan[i], hashing, input.Epoch);
                diffIds[i] = (hashing.Digest(), hashing.Length);
                RememberStat(statKeys[i], diffIds[i]);
                return ValueTask.CompletedTask;
            });
            for (var i = 0; i < plan.Count; i++)
            {
                if (Cached(diffIds[i].DiffId, mediaType) is { } cached)
                {
                    built[i] = new BuiltLayer(plan[i].Name, diffIds[i].DiffId, cached, diffIds[i].Size, plan[i].Files, plan[i].Shared, true);
                }
            }
        }

        var compressing = Enumerable.Range(0, plan.Count).Where(i => built[i] is null).ToList();
        if (compressing.Count > 0)
        {
            progress?.Report($"compressing {compressing.Count} layers ({compressing.Sum(i => plan[i].ContentBytes) / (1024.0 * 1024):0.0} MiB)");
        }

        var sameDiff = new Lock();
        await Parallel.ForEachAsync(compressing, parallel, (i, _) =>
        {
            using var writer = layout.BeginBlob();
            var uncompressed = new HashingStream(null);
            using (var compressed = new ParallelCompressStream(writer.Stream, input.Spec.Compression))
            {
                using var tee = new TeeStream(uncompressed, compressed);
                WriteTar(plan[i], tee, input.Epoch);
                compressed.Complete();
            }

            var diffId = uncompressed.Digest();
            if (!coldStore && diffId != diffIds[i].DiffId)
            {
                throw new ImageException($"layer {plan[i].Name} changed while it was being built (a source file was modified); build again");
            }

            var blob = writer.Commit(null, mediaType);
            lock (sameDiff)
            {
                RememberCache(diffId, blob);
            }

            RememberStat(statKeys[i], (diffId, uncompressed.Length));
            built[i] = new BuiltLayer(plan[i].Name, diffId, blob, uncompressed.Length, plan[i].Files, plan[i].Shared, false);
            return ValueTask.CompletedTask;
        });

        var layers = built.Select(b => b!).ToList();

        var created = DateTimeOffset.FromUnixTimeSeconds(input.Epoch);
        var versions = input.Sources.Select(s => s.Version).ToList();
        var flavours = new List<BuiltFlavour>();
        foreach (var flavour in input.Spec.Flavours)
        {
            var chosen = layers.Where((l, i) => !flavour.Exclude.Contains(plan[i].Rule)).ToList();
            var labels = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                ["org.opencontainers.image.created"] = created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["org.opencontainers.image.title"] = input.Spec.Name,
                ["org.opencontainers.image.version"] = string.Join(",", versions),
                ["capstan.dev/builder"] = BuilderName,
                ["capstan.dev/flavour"] = flavour.Name,
                ["capstan.dev/versions"] = string.Join(",", versions),
            };
            if (input.SourceCommit is { } commit)
            {
                labels["org.opencontainers.image.revision"] = commit;
            }

            foreach (var (key, value) in flavour.Labels)
            {
                labels[key] = value;
            }

            var stamp = created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var config = new JsonObject
            {
                ["created"] = stamp,
                ["architecture"] = "amd64",
                ["os"] = "linux",
                ["config"] = new JsonObject { ["Labels"] = new JsonObject(labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))) },
                ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. chosen.Select(l => (JsonNode?)l.DiffId)]) },
                ["history"] = new JsonArray([.. chosen.Select(l => (JsonNode)new JsonObject { ["created"] = stamp, ["created_by"] = $"capstan image build: layer {l.Name}" })]),
            };
            var configDescriptor = layout.PutBytes(OciJson.Bytes(config), MediaTypes.Config);
            var manifest = OciJson.ImageManifest(
                configDescriptor,
                chosen.Select(l => (JsonNode)(l.Blob with { Annotations = new Dictionary<string, string> { ["capstan.dev/layer"] = l.Name } }).ToJson()),
                new JsonObject(labels.Where(l => l.Key.StartsWith("org.opencontainers", StringComparison.Ordinal)).Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))));
            var manifestDescriptor = layout.PutBytes(OciJson.Bytes(manifest), MediaTypes.Manifest);
            var flavourTag = input.Spec.Flavours.Count == 1 ? tag : $"{tag}-{flavour.Name}";
            flavours.Add(new BuiltFlavour(flavour.Name, flavourTag, manifestDescriptor, configDescriptor, chosen));
        }

        Descriptor top;
        if (flavours.Count == 1)
        {
            top = flavours[0].Manifest;
        }
        else
        {
            var index = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.Index,
                ["manifests"] = new JsonArray([.. flavours.Select(f =>
                {
                    var node = (f.Manifest with { Annotations = new Dictionary<string, string> { ["capstan.dev/flavour"] = f.Name } }).ToJson();
                    node["platform"] = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" };
                    return (JsonNode)node;
                })]),
            };
            top = layout.PutBytes(OciJson.Bytes(index), MediaTypes.Index);
            foreach (var f in flavours)
            {
                await layout.TagAsync(f.Tag, f.Manifest, cancellationToken);
            }
        }

        await layout.TagAsync(tag, top, cancellationToken);
        return new BuildResult(tag, top, flavours, versions, input.SourceCommit, created, started.Elapsed);
    }

    /// <summary>Writes a planned layer as a deterministic tar.</summary>
    internal static void WriteTar(PlannedLayer layer, Stream output, long epoch)
    {
        var tar = new TarBuilder(output, epoch);
        foreach (var entry in layer.Entries)
        {
            switch (entry.Kind)
            {
                case EntryKind.Directory:
                    tar.Directory(entry.Path);
                    break;
                case EntryKind.Symlink:
                    tar.Symlink(entry.Path, entry.Link!);
                    break;
                case EntryKind.Hardlink:
                    tar.Hardlink(entry.Path, entry.Link!);
                    break;
                default:
                    using (var content = new FileStream(entry.Source!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
                    {
                        if (content.Length != entry.Size)
                        {
                            throw new ImageException($"{entry.Source} changed size while the image was being built; build again");
                        }

                        tar.File(entry.Path, entry.Executable, entry.Size, content);
                    }

                    break;
            }
        }

        tar.Finish();
    }

    /// <summary>Checks a tag against the distribution spec's grammar.</summary>
    public static void CheckTag(string tag)
    {
        if (tag.Length is 0 or > 128 || !(char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') || !tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
        {
            throw new ImageReferenceException($"'{tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
        }
    }

    /// <summary>The blob already built from a layer's content with the given compression, if the layout still holds it.</summary>
    private Descriptor? Cached(string diffId, string mediaType)
    {
        var path = CachePath(diffId, mediaType);
        if (!File.Exists(path))
        {
            return null;
        }

        var node = JsonNode.Parse(File.ReadAllText(path))!;
        var blob = new Descriptor(mediaType, node["digest"]!.GetValue<string>(), node["size"]!.GetValue<long>());
        return layout.HasBlob(blob.Digest) && new FileInfo(layout.BlobPath(blob.Digest)).Length == blob.Size ? blob : null;
    }

    private void RememberCache(string diffId, Descriptor blob)
    {
        var path = CachePath(diffId, blob.MediaType);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, new JsonObject { ["digest"] = blob.Digest, ["size"] = blob.Size }.ToJsonString());
        File.Move(temp, path, overwrite: true);
    }

    private (string DiffId, long Size)? StatCached(string statKey)
    {
        var path = Path.Combine(layout.Path, "capstan-cache", "stat", Digests.Hex(statKey) + ".json");
        if (!File.Exists(path))
        {
            return null;
        }

        var node = JsonNode.Parse(File.ReadAllText(path))!;
        return (node["diffId"]!.GetValue<string>(), node["size"]!.GetValue<long>());
    }

    private void RememberStat(string statKey, (string DiffId, long Size) value)
    {
        var path = Path.Combine(layout.Path, "capstan-cache", "stat", Digests.Hex(statKey) + ".json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        File.WriteAllText(temp, new JsonObject { ["diffId"] = value.DiffId, ["size"] = value.Size }.ToJsonString());
        File.Move(temp, path, overwrite: true);
    }

    // gzip's entries keep their old place, so a layout built before zstd existed keeps its cache.
    private string CacheDirectory(string mediaType) => Path.Combine(layout.Path, "capstan-cache", mediaType == MediaTypes.LayerZstd ? "diffids-zstd" : "diffids");

    private string CachePath(string diffId, string mediaType) => Path.Combine(CacheDirectory(mediaType), Digests.Hex(diffId) + ".json");
}
