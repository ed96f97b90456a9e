using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Capstan.Core.Config;

namespace Capstan.Images.Tests;

public sealed class BuildTests
{
    [Fact]
    public async Task The_same_input_gives_the_same_digest_from_another_path_at_another_time()
    {
        var a = Tools.Tree(Tools.Temp("a"));
        var b = Tools.Tree(Tools.Temp("b"));

        // Different mtimes, different directory creation order and another clock: none of it may show.
        foreach (var file in Directory.EnumerateFiles(b, "*", SearchOption.AllDirectories).Where(f => new FileInfo(f).LinkTarget is null))
        {
            File.SetLastWriteTimeUtc(file, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));
        }

        var first = await new ImageBuilder(new OciLayout(Tools.Temp("layout-a"))).BuildAsync(Tools.Input([new ImageSource("php-1.42", a)]), "t", default);
        await Task.Delay(1100);
        var second = await new ImageBuilder(new OciLayout(Tools.Temp("layout-b"))).BuildAsync(Tools.Input([new ImageSource("php-1.42", b)]), "other-tag", default);

        Assert.Equal(first.Top.Digest, second.Top.Digest);
        Assert.Equal(first.Flavours[0].Layers.Select(l => l.Blob.Digest), second.Flavours[0].Layers.Select(l => l.Blob.Digest));

        // The epoch is part of the input: another one, another digest.
        var third = await new ImageBuilder(new OciLayout(Tools.Temp("layout-c"))).BuildAsync(Tools.Input([new ImageSource("php-1.42", a)], epoch: 1_700_000_001), "t", default);
        Assert.NotEqual(first.Top.Digest, third.Top.Digest);
    }

    [Fact]
    public async Task Layers_follow_the_plan_and_tar_entries_are_deterministic()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        var result = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "t", default);
        var layers = result.Flavours[0].Layers.ToDictionary(l => l.Name);

        Assert.Equal(
            ["php-1.42/vendor", "php-1.42/l10n", "php-1.42/extensions-a-f", "php-1.42/extensions-g-m", "php-1.42/extensions-n-s", "php-1.42/extensions-t-z", "php-1.42/skins", "php-1.42/resources", "php-1.42/core", "php-1.42/includes"],
            result.Flavours[0].Layers.Select(l => l.Name));
        Assert.Equal(["srv/", "srv/mediawiki/", "srv/mediawiki/php-1.42/", "srv/mediawiki/php-1.42/vendor/", "srv/mediawiki/php-1.42/vendor/composer/", "srv/mediawiki/php-1.42/vendor/composer/autoload_real.php"], Entries(layout, layers["php-1.42/vendor"]).Select(e => e.Name));
        Assert.Contains("srv/mediawiki/php-1.42/extensions/AbuseFilter/extension.json", Entries(layout, layers["php-1.42/extensions-a-f"]).Select(e => e.Name));
        Assert.Contains("srv/mediawiki/php-1.42/extensions/Ünicode/extension.json", Entries(layout, layers["php-1.42/extensions-t-z"]).Select(e => e.Name));
        Assert.Contains("srv/mediawiki/php-1.42/extensions/Wikibase/repo/x.php", Entries(layout, layers["php-1.42/extensions-t-z"]).Select(e => e.Name));

        foreach (var entry in result.Flavours[0].Layers.SelectMany(l => Entries(layout, l)))
        {
            Assert.Equal(0, entry.Uid);
            Assert.Equal(0, entry.Gid);
            Assert.Equal(string.Empty, ((PosixTarEntry)entry).UserName);
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), entry.ModificationTime);
        }

        var core = Entries(layout, layers["php-1.42/core"]);
        Assert.Equal((UnixFileMode)0b111_101_101, core.Single(e => e.Name.EndsWith("run.sh", StringComparison.Ordinal)).Mode);
        Assert.Equal((UnixFileMode)0b110_100_100, core.Single(e => e.Name.EndsWith("index.php", StringComparison.Ordinal)).Mode);
        Assert.Equal("/etc/mediawiki/LocalSettings.php", core.Single(e => e.Name.EndsWith("LocalSettings.php", StringComparison.Ordinal)).LinkName);
        Assert.Contains(core, e => e.Name == "srv/mediawiki/php-1.42/cache/empty/" && e.EntryType == TarEntryType.Directory);
        var includes = Entries(layout, layers["php-1.42/includes"]);
        Assert.Contains(includes, e => e.Name.Length > 255 && e.Name.EndsWith("/File.php", StringComparison.Ordinal));
        Assert.Contains(includes, e => e.EntryType == TarEntryType.SymbolicLink && e.LinkName.Length > 100);

        // Sorted: parents first, then names by ordinal order, and no path twice.
        foreach (var layer in result.Flavours[0].Layers)
        {
            var names = Entries(layout, layer).Select(e => e.Name.TrimEnd('/')).ToList();
            Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
            Assert.Equal(names, names.Order(Comparer<string>.Create(LayerPlanner.ComparePaths)));
        }
    }

    [Fact]
    public async Task A_rebuild_after_one_changed_file_recompresses_only_its_layer()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        var first = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "one", default);
        Assert.All(first.Flavours[0].Layers.Where(l => l.Files > 0), l => Assert.False(l.Reused));

        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        var second = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "two", default);
        Assert.Equal(["php-1.42/includes"], second.Flavours[0].Layers.Where(l => !l.Reused).Select(l => l.Name));
        Assert.NotEqual(first.Top.Digest, second.Top.Digest);
        Assert.Equal(first.Top.Digest, layout.Resolve("one")!.Digest);
        Assert.Equal(second.Top.Digest, layout.Resolve("two")!.Digest);
    }

    [Fact]
    public async Task A_big_hot_directory_is_cut_into_pieces_at_name_defined_points_so_one_change_touches_one_piece()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var random = new Random(7);
        for (var i = 0; i < 600; i++)
        {
            var text = new string((char)('a' + random.Next(26)), 10_000 + random.Next(1000));
            File.WriteAllText(Path.Combine(tree, "includes", $"Class{i:D3}.php"), text);
        }

        var layout = new OciLayout(Tools.Temp("layout"));
        var first = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "one", default);
        var pieces = first.Flavours[0].Layers.Where(l => l.Name.StartsWith("php-1.42/includes", StringComparison.Ordinal)).ToList();
        Assert.True(pieces.Count >= 4, $"{pieces.Count} pieces");
        Assert.All(pieces, p => Assert.True(p.UncompressedSize < 1_500_000 + 20_000 + 100_000, $"{p.Name}: {p.UncompressedSize}"));

        File.AppendAllText(Path.Combine(tree, "includes", "Class300.php"), "// changed");
        var second = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "two", default);
        Assert.Single(second.Flavours[0].Layers, l => !l.Reused);
        Assert.Equal(first.Flavours[0].Layers.Count, second.Flavours[0].Layers.Count);
    }

    [Fact]
    public async Task The_stat_cache_trusts_size_and_time_unless_asked_to_verify()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        var first = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "one", default);

        // Same size, same modification time, other bytes: only a verifying build sees it.
        var file = Path.Combine(tree, "includes", "Setup.php");
        var stamp = File.GetLastWriteTimeUtc(file);
        File.WriteAllText(file, File.ReadAllText(file).Replace("setup", "SETUP", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(file, stamp);
        var trusting = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "two", default);
        Assert.Equal(first.Top.Digest, trusting.Top.Digest);
        var verified = await new ImageBuilder(layout) { Verify = true }.BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "three", default);
        Assert.NotEqual(first.Top.Digest, verified.Top.Digest);
        Assert.Equal(["php-1.42/includes"], verified.Flavours[0].Layers.Where(l => !l.Reused).Select(l => l.Name));
    }

    [Fact]
    public async Task A_second_version_stores_only_what_differs()
    {
        var v1 = Tools.Tree(Tools.Temp("v1"));
        var v2 = Tools.Tree(Tools.Temp("v2"));
        File.WriteAllText(Path.Combine(v2, "includes", "Setup.php"), "<?php // 1.43 setup");
        File.WriteAllText(Path.Combine(v2, "includes", "New.php"), "<?php // new in 1.43");
        var layout = new OciLayout(Tools.Temp("layout"));
        var one = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", v1)]), "one", default);
        var two = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", v1), new ImageSource("php-1.43", v2)]), "two", default);

        // The first version's layers are the same blobs; the second version's hold links for shared files.
        Assert.Equal(one.Flavours[0].Layers.Select(l => l.Blob.Digest), two.Flavours[0].Layers.Take(one.Flavours[0].Layers.Count).Select(l => l.Blob.Digest));
        var added = two.Flavours[0].Layers.Skip(one.Flavours[0].Layers.Count).ToList();
        var includes = Entries(layout, added.Single(l => l.Name == "php-1.43/includes"));
        Assert.Equal(TarEntryType.RegularFile, includes.Single(e => e.Name.EndsWith("includes/Setup.php", StringComparison.Ordinal)).EntryType);
        Assert.Equal(TarEntryType.RegularFile, includes.Single(e => e.Name.EndsWith("includes/New.php", StringComparison.Ordinal)).EntryType);
        var vendor = Entries(layout, added.Single(l => l.Name == "php-1.43/vendor"));
        var shared = vendor.Single(e => e.Name.EndsWith("autoload_real.php", StringComparison.Ordinal));
        Assert.Equal(TarEntryType.HardLink, shared.EntryType);
        Assert.Equal("srv/mediawiki/php-1.42/vendor/composer/autoload_real.php", shared.LinkName);
        Assert.Equal(2, added.Sum(l => l.Files));
    }

    [Fact]
    public void A_layer_plan_in_capstan_yaml_is_read_with_its_errors_located()
    {
        var bag = new Core.Diagnostics.DiagnosticBag();
        var node = Core.Yaml.YamlReader.ReadSingle("""
            name: mw
            root: /srv/mw/
            sources: {php-1.42: ../php-1.42}
            epoch: 1700000000
            layers:
              - {name: vendor, paths: [vendor/]}
              - {name: rest, paths: ["*"]}
            flavours:
              web: {}
              cli: {exclude: [vendor], labels: {purpose: cli}}
            """, "capstan.yaml", bag);
        var spec = ImageBuildSpec.Read(new NodeReader(bag), node);
        Assert.False(bag.HasErrors);
        Assert.Equal("srv/mw", spec.Root);
        Assert.Equal(["vendor", "rest"], spec.Layers.Select(l => l.Name));
        Assert.Equal(["web", "cli"], spec.Flavours.Select(f => f.Name));

        var bad = new Core.Diagnostics.DiagnosticBag();
        ImageBuildSpec.Read(new NodeReader(bad), Core.Yaml.YamlReader.ReadSingle("layers:\n  - {name: a, paths: [a/]}\ncompression: xz\n", "capstan.yaml", bad));
        Assert.Equal(
            ["capstan.yaml:2:3: error: image.layers needs one layer with the path '*' for everything no other layer takes", "capstan.yaml:3:14: error: image.compression 'xz' is not supported (allowed: gzip, zstd)"],
            bad.Sorted().Select(d => d.ToString()));
    }

    [Fact]
    public async Task Several_flavours_make_an_index_with_a_manifest_each()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var spec = ImageBuildSpec.Default with
        {
            Flavours = [new ImageFlavour("web", [], new Dictionary<string, string>()), new ImageFlavour("cli", ["skins", "resources"], new Dictionary<string, string> { ["purpose"] = "cli" })],
        };
        var layout = new OciLayout(Tools.Temp("layout"));
        var result = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)], spec: spec), "t", default);
        Assert.Equal(MediaTypes.Index, result.Top.MediaType);
        Assert.Equal(["t-web", "t-cli"], result.Flavours.Select(f => f.Tag));
        Assert.Equal(result.Flavours[0].Layers.Count - 2, result.Flavours[1].Layers.Count);
        var inspected = await ImageInspector.InspectAsync(layout, "t", default);
        Assert.Equal("cli", inspected["manifests"]![1]!["labels"]!["purpose"]!.GetValue<string>());
        Assert.Equal("cli", inspected["manifests"]![1]!["flavour"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_checkouts_git_metadata_never_goes_into_the_image_and_the_image_file_reader_finds_the_topmost_file()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var config = Tools.Temp("config");
        Directory.CreateDirectory(Path.Combine(config, ".git", "objects"));
        File.WriteAllText(Path.Combine(config, ".git", "HEAD"), "ref: refs/heads/main\n");
        Directory.CreateDirectory(Path.Combine(config, "sub"));
        File.WriteAllText(Path.Combine(config, "sub", ".git"), "gitdir: ../.git/modules/sub\n");
        File.WriteAllText(Path.Combine(config, "wikiversions.json"), "{\"enwiki\": \"php-1.42\"}\n");
        Directory.CreateDirectory(Path.Combine(tree, ".git"));
        File.WriteAllText(Path.Combine(tree, ".git", "HEAD"), "ref: refs/heads/main\n");
        var layout = new OciLayout(Tools.Temp("layout"));

        var result = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)], config), "t", default);

        var names = result.Flavours[0].Layers.SelectMany(l => Entries(layout, l)).Select(e => e.Name).ToList();
        Assert.Contains(names, n => n.EndsWith("/wikiversions.json", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.Split('/').Contains(".git"));
        var digest = result.Flavours[0].Manifest.Digest;
        Assert.Equal("{\"enwiki\": \"php-1.42\"}\n", await ImageFiles.ReadTextAsync(layout, digest, "srv/mediawiki/wikiversions.json", default));
        Assert.Null(await ImageFiles.ReadTextAsync(layout, digest, "srv/mediawiki/nothing.json", default));
    }

    internal static List<TarEntry> Entries(OciLayout layout, BuiltLayer layer)
    {
        using var gzip = new GZipStream(File.OpenRead(layout.BlobPath(layer.Blob.Digest)), CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        var entries = new List<TarEntry>();
        while (reader.GetNextEntry() is { } entry)
        {
            entries.Add(entry);
        }

        return entries;
    }

    internal static JsonNode Json(string text) => JsonNode.Parse(text)!;

    [Fact]
    public async Task The_pull_cost_of_a_new_image_is_the_layers_nodes_lack_times_the_nodes()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        var old = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "old", default);
        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        var @new = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "new", default);

        var changed = @new.Flavours[0].Layers.Where(l => !l.Reused).Select(l => l.Blob).DistinctBy(b => b.Digest).Sum(b => b.Size);
        var missing = PullCost.Missing(await PullCost.LayersAsync(layout, "old", default), await PullCost.LayersAsync(layout, "new", default));
        Assert.Equal(changed, missing);
        Assert.Equal(0, PullCost.Missing(await PullCost.LayersAsync(layout, "new", default), await PullCost.LayersAsync(layout, "new", default)));
        Assert.Equal(old.Flavours[0].Layers.DistinctBy(l => l.Blob.Digest).Sum(l => l.Blob.Size), PullCost.Missing([], await PullCost.LayersAsync(layout, "old", default)));

        // 300 nodes lacking 100 MB each, a 1.25 GB/s registry, 625 MB/s per node: 30 GB → 24 s from the registry;
        // peer-to-peer, 0.16 s to seed plus 9 doublings of a 1 MiB chunk.
        var estimate = PullCost.Estimate("eqiad", 300, 100_000_000, 1_250_000_000, 625_000_000);
        Assert.Equal(30_000_000_000, estimate.TotalBytes);
        Assert.Equal(24.0, estimate.RegistrySeconds, 3);
        Assert.Equal((100_000_000 / 625_000_000.0) + (9 * 1048576 / 625_000_000.0), estimate.PeerToPeerSeconds, 6);
        Assert.Equal(0, PullCost.Estimate("codfw", 0, 100, 1, 1).TotalBytes);

        // Nodes lacking different amounts: those lacking nothing do not count; the registry sends the sum.
        var uneven = PullCost.Estimate("eqiad", [100, 0, 300], 100, 1000);
        Assert.Equal((2, 300L, 400L, 4.0), (uneven.Nodes, uneven.BytesPerNode, uneven.TotalBytes, uneven.RegistrySeconds));
    }

    [Fact]
    public async Task The_watch_mode_picks_up_a_changed_file_a_deleted_one_and_a_new_directory_and_builds_what_a_full_walk_builds()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var input = Tools.Input([new ImageSource("php-1.42", tree)]);
        var layout = new OciLayout(Tools.Temp("layout"));
        using var watcher = new ImageWatcher(input);
        var first = await new ImageBuilder(layout).BuildAsync(input, "one", watcher, default);
        Assert.Equal(first.Top.Digest, (await new ImageBuilder(new OciLayout(Tools.Temp("fresh1"))).BuildAsync(input, "one", default)).Top.Digest);
        Assert.Equal(0, watcher.Pending);

        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        File.Delete(Path.Combine(tree, "skins", "Vector", "skin.json"));
        Directory.CreateDirectory(Path.Combine(tree, "extensions", "New", "src"));
        File.WriteAllText(Path.Combine(tree, "extensions", "New", "src", "Hooks.php"), "<?php // new");

        // The notifications arrive on their own thread: wait until each of the three is known.
        string[] changed = [Path.Combine(tree, "includes", "Setup.php"), Path.Combine(tree, "skins", "Vector", "skin.json"), Path.Combine(tree, "extensions", "New")];
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!changed.All(watcher.Noticed) && DateTime.UtcNow < deadline)
        {
            await Task.Yield();
        }

        Assert.All(changed, path => Assert.True(watcher.Noticed(path), $"{path} not noticed"));
        var watched = await new ImageBuilder(layout).BuildAsync(input, "two", watcher, default);
        var full = await new ImageBuilder(new OciLayout(Tools.Temp("fresh2"))).BuildAsync(input, "two", default);
        Assert.Equal(full.Top.Digest, watched.Top.Digest);
        Assert.NotEqual(first.Top.Digest, watched.Top.Digest);
        Assert.Equal(0, watcher.Pending);
    }
}
