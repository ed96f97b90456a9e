using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Config;

namespace Capstan.Images.Tests;

public sealed class PrepTests
{
    [Theory]
    [InlineData("dotdot")]
    [InlineData("absolute")]
    [InlineData("through-symlink")]
    [InlineData("hardlink-outside")]
    public async Task A_crafted_image_that_reaches_outside_the_target_is_refused_and_nothing_is_written(string attack)
    {
        var outside = Tools.Temp("outside");
        var target = Path.Combine(Tools.Temp("stage"), "target");
        var layout = new OciLayout(Tools.Temp("layout"));
        var entries = new List<TarEntry> { Dir("srv/"), File("srv/ok.php", "<?php") };
        switch (attack)
        {
            case "dotdot":
                entries.Add(File("srv/../../escaped.txt", "x"));
                break;
            case "absolute":
                entries.Add(File(Path.Combine(outside, "absolute.txt"), "x"));
                break;
            case "through-symlink":
                entries.Add(new PaxTarEntry(TarEntryType.SymbolicLink, "srv/link") { LinkName = outside });
                entries.Add(File("srv/link/pwned.txt", "x"));
                break;
            default:
                entries.Add(new PaxTarEntry(TarEntryType.HardLink, "srv/hard") { LinkName = "../../etc/passwd" });
                break;
        }

        await Image(layout, "evil", [entries]);
        var ex = await Assert.ThrowsAsync<ImageException>(() => new ImagePrep(layout).PrepAsync("evil", target, null, default));
        Assert.Contains("refusing the image", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.False(System.IO.File.Exists(Path.Combine(Path.GetDirectoryName(target)!, "escaped.txt")));
        Assert.False(Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any());
    }

    /// <summary>
    /// Hostile layouts: each names the entry that must appear in the refusal. <c>OUT</c> in a link stands for the outside
    /// directory, which holds a file <c>victim</c> and a directory <c>d</c> with <c>t</c> and <c>keep-me</c>.
    /// </summary>
    public static TheoryData<string, string> HostileLayouts() => new()
    {
        { "state-file-link", ".capstan-prep.json" },
        { "hardlink-through-replaced-dir", "'d'" },
        { "file-under-link", "d/pwned" },
        { "file-under-link-later-layer", "d/pwned" },
        { "whiteout-under-link", "d/.wh.victim" },
        { "opaque-under-link", "d/.wh..wh..opq" },
        { "link-over-dir-later-layer", "'d'" },
        { "hardlink-to-link", "'x'" },
        { "hardlink-to-dir", "'x'" },
        { "hardlink-target-whited-out", "'x'" },
        { "hardlink-under-link", "'x'" },
        { "char-device", "dev/null" },
        { "block-device", "dev/sda" },
        { "fifo", "run/pipe" },
        { "file-under-file", "a.txt/inner" },
    };

    [Theory]
    [MemberData(nameof(HostileLayouts))]
    public async Task A_hostile_layout_is_refused_naming_its_entry_and_nothing_outside_is_touched(string attack, string named)
    {
        var outside = Outside();
        var stage = Tools.Temp("stage");
        var target = Path.Combine(stage, "target");
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "evil", HostileLayers(attack, outside));
        var before = Snapshot(outside);

        var ex = await Assert.ThrowsAsync<ImageException>(() => new ImagePrep(layout).PrepAsync("evil", target, null, default));

        Assert.Contains(named, ex.Message, StringComparison.Ordinal);
        Assert.Contains("refusing the image", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(outside));
        Assert.False(Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any());
    }

    [Fact]
    public async Task An_earlier_preps_paths_under_a_directory_the_new_image_makes_a_link_are_not_deleted_through_the_link()
    {
        var outside = Outside();
        var target = Tools.Temp("target");
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "one", [[Dir("d/"), File("d/keep-me", "mine"), File("d/t", "mine")]]);
        await Image(layout, "two", [[new PaxTarEntry(TarEntryType.SymbolicLink, "d") { LinkName = Path.Combine(outside, "d") }]]);
        await new ImagePrep(layout).PrepAsync("one", target, null, default);
        var before = Snapshot(outside);

        await new ImagePrep(layout).PrepAsync("two", target, null, default);

        Assert.Equal(before, Snapshot(outside));
        Assert.Equal(Path.Combine(outside, "d"), new DirectoryInfo(Path.Combine(target, "d")).LinkTarget);
    }

    [Fact]
    public async Task A_link_standing_at_preps_record_is_replaced_not_written_through()
    {
        var outside = Outside();
        var target = Tools.Temp("target");
        System.IO.File.CreateSymbolicLink(Path.Combine(target, ImagePrep.StateFile), Path.Combine(outside, "victim"));
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "one", [[File("a.txt", "a")]]);
        var before = Snapshot(outside);

        await new ImagePrep(layout).PrepAsync("one", target, null, default);

        Assert.Equal(before, Snapshot(outside));
        Assert.Null(new FileInfo(Path.Combine(target, ImagePrep.StateFile)).LinkTarget);
    }

    [Fact]
    public async Task A_link_in_the_target_where_the_image_has_a_directory_is_foreign_and_forced_replaced_not_followed()
    {
        var outside = Outside();
        var target = Tools.Temp("target");
        System.IO.File.CreateSymbolicLink(Path.Combine(target, "d"), Path.Combine(outside, "d"));
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "one", [[File("d/t", "image"), File("d/new", "image")]]);
        var before = Snapshot(outside);

        var refused = await Assert.ThrowsAsync<ImageForeignFilesException>(() => new ImagePrep(layout).PrepAsync("one", target, null, default));
        Assert.Contains(": d;", refused.Message, StringComparison.Ordinal);
        await new ImagePrep(layout).PrepAsync("one", target, null, default, overwriteForeign: true);

        Assert.Equal(before, Snapshot(outside));
        Assert.Null(new DirectoryInfo(Path.Combine(target, "d")).LinkTarget);
        Assert.Equal("image", await System.IO.File.ReadAllTextAsync(Path.Combine(target, "d", "t")));
    }

    [Fact]
    public async Task Whiteouts_in_the_same_layer_keep_that_layers_entries()
    {
        var target = Tools.Temp("target");
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "wh",
        [
            [Dir("d/"), File("d/old.txt", "1"), Dir("e/"), File("e/old.txt", "1")],
            [File("d/new.txt", "2"), File("d/.wh..wh..opq", string.Empty), File("e/new.txt", "2"), File(".wh.e", string.Empty), File(".wh.missing/x", string.Empty)],
        ]);
        await new ImagePrep(layout).PrepAsync("wh", target, null, default);
        Assert.Equal(["new.txt"], Directory.EnumerateFileSystemEntries(Path.Combine(target, "d")).Select(Path.GetFileName));
        Assert.Equal(["new.txt"], Directory.EnumerateFileSystemEntries(Path.Combine(target, "e")).Select(Path.GetFileName));
        Assert.False(Directory.Exists(Path.Combine(target, "missing")));
    }

    [Fact]
    public async Task A_symbolic_link_to_anywhere_is_created_as_a_link_and_never_followed()
    {
        var outside = Tools.Temp("outside");
        var target = Tools.Temp("target");
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "links", [[Dir("srv/"), new PaxTarEntry(TarEntryType.SymbolicLink, "srv/settings.php") { LinkName = Path.Combine(outside, "settings.php") }]]);

        // A later prep that turns the link into a file replaces the link; it does not write through it.
        await new ImagePrep(layout).PrepAsync("links", target, null, default);
        Assert.Equal(Path.Combine(outside, "settings.php"), new FileInfo(Path.Combine(target, "srv", "settings.php")).LinkTarget);
        await Image(layout, "file", [[Dir("srv/"), File("srv/settings.php", "<?php // real")]]);
        await new ImagePrep(layout).PrepAsync("file", target, null, default);
        Assert.Null(new FileInfo(Path.Combine(target, "srv", "settings.php")).LinkTarget);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    [Fact]
    public async Task Whiteouts_remove_lower_layers_content()
    {
        var target = Tools.Temp("target");
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "wh",
        [
            [Dir("a/"), Dir("a/b/"), File("a/b/keep.txt", "1"), File("a/gone.txt", "2"), Dir("d/"), File("d/one.txt", "3"), Dir("d/sub/"), File("d/sub/two.txt", "4")],
            [Dir("a/"), File("a/.wh.gone.txt", string.Empty), Dir("d/"), File("d/.wh..wh..opq", string.Empty), File("d/new.txt", "5")],
        ]);
        await new ImagePrep(layout).PrepAsync("wh", target, null, default);
        Assert.True(System.IO.File.Exists(Path.Combine(target, "a", "b", "keep.txt")));
        Assert.False(System.IO.File.Exists(Path.Combine(target, "a", "gone.txt")));
        Assert.False(System.IO.File.Exists(Path.Combine(target, "a", ".wh.gone.txt")));
        Assert.Equal(["new.txt"], Directory.EnumerateFileSystemEntries(Path.Combine(target, "d")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_prep_over_an_earlier_version_writes_only_what_changed_and_leaves_foreign_files_alone()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "one", default);
        var target = Tools.Temp("target");
        var first = await new ImagePrep(layout).PrepAsync("one", target, null, default);
        Assert.Equal(0, first.Unchanged);
        Assert.Equal(Tools.Sha256Tree(tree), Tools.Sha256Tree(Path.Combine(target, "srv", "mediawiki", "php-1.42")));

        var foreign = Path.Combine(target, "srv", "mediawiki", "php-1.42", "LocalSettings.generated.php");
        await System.IO.File.WriteAllTextAsync(foreign, "<?php // written by the installer");
        var untouched = Path.Combine(target, "srv", "mediawiki", "php-1.42", "index.php");
        var stamp = System.IO.File.GetLastWriteTimeUtc(untouched).AddDays(-3);
        System.IO.File.SetLastWriteTimeUtc(untouched, stamp);

        System.IO.File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        System.IO.File.Delete(Path.Combine(tree, "skins", "Vector", "skin.json"));
        await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "two", default);
        var second = await new ImagePrep(layout).PrepAsync("two", target, null, default);

        Assert.Equal(1, second.Written);
        Assert.Equal(1, second.Removed);
        Assert.Equal(stamp, System.IO.File.GetLastWriteTimeUtc(untouched));
        Assert.True(System.IO.File.Exists(foreign));
        System.IO.File.Delete(foreign);
        Assert.Equal(Tools.Sha256Tree(tree), Tools.Sha256Tree(Path.Combine(target, "srv", "mediawiki", "php-1.42")));
    }

    [Fact]
    public async Task A_file_the_image_would_overwrite_that_no_prep_wrote_is_refused_unless_forced()
    {
        var layout = new OciLayout(Tools.Temp("layout"));
        await Image(layout, "one", [[Dir("srv/"), File("srv/index.php", "<?php // image"), File("srv/other.php", "<?php")]]);
        var target = Tools.Temp("target");
        Directory.CreateDirectory(Path.Combine(target, "srv"));
        var mine = Path.Combine(target, "srv", "index.php");
        await System.IO.File.WriteAllTextAsync(mine, "<?php // mine");

        var refused = await Assert.ThrowsAsync<ImageForeignFilesException>(() => new ImagePrep(layout).PrepAsync("one", target, null, default));
        Assert.Contains("holds 1 path that the image would overwrite and no earlier prep wrote: srv/index.php; nothing was written (--force overwrites them)", refused.Message, StringComparison.Ordinal);
        Assert.Equal("<?php // mine", await System.IO.File.ReadAllTextAsync(mine));
        Assert.Equal(["index.php"], Directory.EnumerateFileSystemEntries(Path.Combine(target, "srv")).Select(Path.GetFileName));

        var forced = await new ImagePrep(layout).PrepAsync("one", target, null, default, overwriteForeign: true);
        Assert.Equal(2, forced.Written);
        Assert.Equal("<?php // image", await System.IO.File.ReadAllTextAsync(mine));

        // Once written by a prep, the file is the prep's own: the next prep may replace it without --force.
        await Image(layout, "two", [[Dir("srv/"), File("srv/index.php", "<?php // image two")]]);
        await new ImagePrep(layout).PrepAsync("two", target, null, default);
        Assert.Equal("<?php // image two", await System.IO.File.ReadAllTextAsync(mine));
    }

    private static List<List<TarEntry>> HostileLayers(string attack, string outside)
    {
        TarEntry Link(string name, string to) => new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = to.Replace("OUT", outside, StringComparison.Ordinal) };
        TarEntry Hard(string name, string to) => new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = to };
        return attack switch
        {
            "state-file-link" => [[Link(ImagePrep.StateFile, "OUT/victim"), File("a.txt", "a")]],
            "hardlink-through-replaced-dir" => [[File("d/t", "inside"), Link("d", "OUT/d"), Hard("x", "d/t")]],
            "file-under-link" => [[Link("d", "OUT/d"), File("d/pwned", "x")]],
            "file-under-link-later-layer" => [[Link("d", "OUT/d")], [File("d/pwned", "x")]],
            "whiteout-under-link" => [[Link("d", "OUT")], [File("d/.wh.victim", string.Empty)]],
            "opaque-under-link" => [[Link("d", "OUT/d")], [File("d/.wh..wh..opq", string.Empty)]],
            "link-over-dir-later-layer" => [[Dir("d/"), File("d/t", "inside")], [Link("d", "OUT/d")]],
            "hardlink-to-link" => [[Link("l", "OUT/victim"), Hard("x", "l")]],
            "hardlink-to-dir" => [[Dir("d/"), Hard("x", "d")]],
            "hardlink-target-whited-out" => [[File("d/t", "inside"), Hard("x", "d/t")], [File(".wh.d", string.Empty), Link("d", "OUT/d")]],
            "hardlink-under-link" => [[Link("d", "OUT/d"), Hard("x", "d/t")]],
            "char-device" => [[new PaxTarEntry(TarEntryType.CharacterDevice, "dev/null") { DeviceMajor = 1, DeviceMinor = 3 }]],
            "block-device" => [[new PaxTarEntry(TarEntryType.BlockDevice, "dev/sda") { DeviceMajor = 8, DeviceMinor = 0 }]],
            "fifo" => [[new PaxTarEntry(TarEntryType.Fifo, "run/pipe")]],
            "file-under-file" => [[File("a.txt", "a"), File("a.txt/inner", "b")]],
            _ => throw new ArgumentException(attack, nameof(attack)),
        };
    }

    /// <summary>A directory outside every target, with a file and a directory an attack would reach for.</summary>
    private static string Outside()
    {
        var outside = Tools.Temp("outside");
        Directory.CreateDirectory(Path.Combine(outside, "d"));
        System.IO.File.WriteAllText(Path.Combine(outside, "victim"), "outside");
        System.IO.File.WriteAllText(Path.Combine(outside, "d", "t"), "outside t");
        System.IO.File.WriteAllText(Path.Combine(outside, "d", "keep-me"), "outside keep-me");
        return outside;
    }

    /// <summary>Every path under a directory with its kind, mode, link target and content, links never followed.</summary>
    private static string Snapshot(string root) => string.Join('\n',
        new DirectoryInfo(root).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .OrderBy(i => i.FullName, StringComparer.Ordinal)
            .Select(i => $"{Path.GetRelativePath(root, i.FullName)} {(i.LinkTarget is { } link ? "-> " + link : i is DirectoryInfo ? "dir" : System.IO.File.ReadAllText(i.FullName))} {i.UnixFileMode} {i.LastWriteTimeUtc.Ticks}"));

    private static PaxTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0b111_101_101 };

    private static PaxTarEntry File(string name, string text) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)), Mode = (UnixFileMode)0b110_100_100 };

    /// <summary>Writes an image with the given layers (as another tool might) into the layout under a tag.</summary>
    private static async Task Image(OciLayout layout, string tag, List<List<TarEntry>> layers)
    {
        var descriptors = new List<Descriptor>();
        var diffIds = new JsonArray();
        foreach (var entries in layers)
        {
            using var tar = new MemoryStream();
            using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var entry in entries)
                {
                    writer.WriteEntry(entry);
                }
            }

            diffIds.Add(Digests.Of(tar.ToArray()));
            using var gz = new MemoryStream();
            using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write(tar.ToArray());
            }

            descriptors.Add(layout.PutBytes(gz.ToArray(), MediaTypes.LayerGzip));
        }

        var config = layout.PutBytes(Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
        }.ToJsonString()), MediaTypes.Config);
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.Manifest,
            ["config"] = config.ToJson(),
            ["layers"] = new JsonArray([.. descriptors.Select(d => (JsonNode)d.ToJson())]),
        };
        await layout.PutManifestAsync(tag, Encoding.UTF8.GetBytes(manifest.ToJsonString()), MediaTypes.Manifest, default);
    }
}
