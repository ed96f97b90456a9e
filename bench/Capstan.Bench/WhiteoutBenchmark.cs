using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Images;

namespace Capstan.Bench;

/// <summary>
/// Prep of an image whose second layer whites out every file of its first (FILES of them), against the first layer
/// alone: the whiteouts should cost about what reading their entries costs, not grow with the tree they apply to.
/// </summary>
internal static class WhiteoutBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var files = int.Parse(BenchTools.Option(args, "--files") ?? "40000", System.Globalization.CultureInfo.InvariantCulture);
        var rounds = int.Parse(BenchTools.Option(args, "--rounds") ?? "3", System.Globalization.CultureInfo.InvariantCulture);
        var work = Path.Combine(Path.GetTempPath(), "capstan-bench-whiteout-" + Guid.NewGuid().ToString("N"));
        try
        {
            var layout = new OciLayout(Path.Combine(work, "layout"));
            var first = Layer(Enumerable.Range(0, files).Select(i => File($"srv/d{i % 200}/f{i}.php")));
            await ImageAsync(layout, "whiteouts", [first, Layer(Enumerable.Range(0, files).Select(i => File($"srv/d{i % 200}/.wh.f{i}.php")))]);
            await ImageAsync(layout, "files", [first]);
            var times = new Dictionary<string, List<double>> { ["files"] = [], ["whiteouts"] = [] };
            for (var round = 0; round < rounds; round++)
            {
                foreach (var tag in times.Keys)
                {
                    var target = Path.Combine(work, $"{tag}-{round}");
                    var watch = Stopwatch.StartNew();
                    await new ImagePrep(layout).PrepAsync(tag, target, null, default);
                    times[tag].Add(watch.Elapsed.TotalSeconds);
                    Directory.Delete(target, recursive: true);
                }
            }

            var baseline = BenchTools.Median(times["files"]);
            var whiteouts = BenchTools.Median(times["whiteouts"]);
            Console.WriteLine($"prep of {files} files (baseline):                    {baseline:0.00} s (median of {rounds})");
            Console.WriteLine($"prep of {files} files, then {files} whiteouts of them: {whiteouts:0.00} s ({whiteouts / baseline:0.00}x the baseline)");
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static PaxTarEntry File(string name) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("<?php\n")), Mode = (UnixFileMode)0b110_100_100 };

    private static byte[] Layer(IEnumerable<TarEntry> entries)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        return tar.ToArray();
    }

    private static async Task ImageAsync(OciLayout layout, string tag, List<byte[]> layers)
    {
        var descriptors = new JsonArray();
        var diffIds = new JsonArray();
        foreach (var layer in layers)
        {
            diffIds.Add(Digests.Of(layer));
            using var gz = new MemoryStream();
            using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write(layer);
            }

            descriptors.Add(layout.PutBytes(gz.ToArray(), MediaTypes.LayerGzip).ToJson());
        }

        var config = layout.PutBytes(Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
        }.ToJsonString()), MediaTypes.Config);
        var manifest = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.Manifest, ["config"] = config.ToJson(), ["layers"] = descriptors };
        await layout.PutManifestAsync(tag, Encoding.UTF8.GetBytes(manifest.ToJsonString()), MediaTypes.Manifest, default);
    }
}
