using System.Diagnostics;
using Capstan.Core.Config;
using Capstan.Images;
using Capstan.Testing;

namespace Capstan.Bench;

/// <summary>
/// Image build on a real MediaWiki tree (Debian's, 23k files), in one run against baselines on the same machine:
/// <c>tar | gzip -1</c> of the tree (the single-core physical reference), <c>umoci repack</c> of the same tree, then
/// Capstan's cold build, a warm rebuild after one changed file in includes/ (and what a push of it sends to a real
/// registry), and a second version that differs in a few files.
/// </summary>
internal static class ImageBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var source = BenchTools.Option(args, "--tree") ?? "/usr/share/mediawiki";
        if (!Directory.Exists(source))
        {
            Console.Error.WriteLine($"{source} is missing: apt-get install mediawiki");
            return 2;
        }

        var work = Path.Combine(Path.GetTempPath(), "capstan-bench-image-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var registry = new RegistryServer();
        await registry.InitializeAsync();
        try
        {
            // A private copy of the tree (links kept), so one file can be changed.
            var tree = Path.Combine(work, "php-1.39");
            Run("cp", "-a", source, tree);
            var planned = LayerPlanner.Plan(new BuildInput(ImageBuildSpec.Default, [new ImageSource("php-1.39", tree)], null, 0, null));
            Console.WriteLine($"tree: {source}, {planned.Sum(l => l.Files)} files, {planned.Sum(l => l.ContentBytes) / 1048576.0:0.0} MiB (symbolic links not followed); {Environment.ProcessorCount} cores");

            // Warm the page cache so every contender reads from memory.
            TarGzip(tree);
            var (tarTime, tarBytes) = TarGzip(tree);
            Console.WriteLine($"tar | gzip -1:           {tarTime:0.00} s, {tarBytes / 1048576.0:0.0} MiB");

            var umoci = Umoci(tree, work);
            Console.WriteLine(umoci is { } u ? $"umoci repack:            {u:0.00} s" : "umoci repack:            (umoci not installed)");

            var layout = new OciLayout(Path.Combine(work, "layout"));
            var input = new BuildInput(ImageBuildSpec.Default, [new ImageSource("php-1.39", tree)], null, 1_700_000_000, null);
            var watch = Stopwatch.StartNew();
            var cold = await new ImageBuilder(layout).BuildAsync(input, "cold", default);
            var coldTime = watch.Elapsed.TotalSeconds;
            var imageBytes = cold.Flavours[0].Layers.Sum(l => l.Blob.Size);
            Console.WriteLine($"capstan cold build:      {coldTime:0.00} s, {imageBytes / 1048576.0:0.0} MiB in {cold.Flavours[0].Layers.Count} layers " +
                $"→ {tarTime / coldTime:0.00}× tar|gzip -1{(umoci is { } u2 ? $", {u2 / coldTime:0.0}× umoci" : string.Empty)}");

            Breakdown(input, coldTime);

            // The same cold build with zstd layers, into a layout of its own.
            var zstdLayout = new OciLayout(Path.Combine(work, "layout-zstd"));
            watch.Restart();
            var zstd = await new ImageBuilder(zstdLayout).BuildAsync(input with { Spec = ImageBuildSpec.Default with { Compression = "zstd" } }, "cold", default);
            var zstdTime = watch.Elapsed.TotalSeconds;
            Console.WriteLine($"capstan cold build zstd: {zstdTime:0.00} s, {zstd.Flavours[0].Layers.Sum(l => l.Blob.Size) / 1048576.0:0.0} MiB " +
                $"→ {tarTime / zstdTime:0.00}× tar|gzip -1, {coldTime / zstdTime:0.00}× the gzip build");

            var registryUri = new Uri(registry.Address + "/");
            using (var push = new RegistryClient(registryUri, "mediawiki", null))
            {
                watch.Restart();
                await new ImageCopier(layout, push).CopyAsync("cold", "cold", default);
                Console.WriteLine($"  push to docker-registry: {watch.Elapsed.TotalSeconds:0.00} s, {push.BytesUploaded / 1048576.0:0.0} MiB sent");
            }

            // Warm rebuilds: one changed file in includes/ each time (the first in a fresh process state, then steady state).
            var warmTimes = new List<double>();
            var targets = Directory.EnumerateFiles(Path.Combine(tree, "includes"), "*.php", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where((_, n) => n % 500 == 0).Take(5).ToList();
            long pushedWarm = 0;
            var recompressed = new List<string>();
            foreach (var changedFile in targets)
            {
                await File.AppendAllTextAsync(changedFile, "\n// one changed line\n");
                watch.Restart();
                var warm = await new ImageBuilder(layout).BuildAsync(input, "warm", default);
                warmTimes.Add(watch.Elapsed.TotalSeconds);
                recompressed.AddRange(warm.Flavours[0].Layers.Where(l => !l.Reused).Select(l => l.Name));
                using var push = new RegistryClient(registryUri, "mediawiki", null);
                await new ImageCopier(layout, push).CopyAsync("warm", "warm", default);
                pushedWarm = Math.Max(pushedWarm, push.BytesUploaded);
            }

            var warmMedian = warmTimes.Order().ElementAt(warmTimes.Count / 2);

            // Where a warm rebuild's time goes: the walk of the trees (the plan) and the stat keys, then the rest.
            var walks = new List<double>();
            for (var n = 0; n < 5; n++)
            {
                watch.Restart();
                var again = LayerPlanner.Plan(input);
                _ = again.Select(l => l.StatKey()).ToList();
                walks.Add(watch.Elapsed.TotalSeconds);
            }

            Console.WriteLine($"  of which the walk of the tree and its stat keys: median {walks.Order().ElementAt(2):0.000} s");

            // The watch mode: the trees kept current by inotify, so a rebuild reads only what changed.
            using (var watcher = new ImageWatcher(input))
            {
                await new ImageBuilder(layout).BuildAsync(input, "watched", watcher, default);
                var watched = new List<double>();
                foreach (var changedFile in targets)
                {
                    await File.AppendAllTextAsync(changedFile, "\n// another changed line\n");
                    var deadline = DateTime.UtcNow.AddSeconds(10);
                    while (!watcher.Noticed(changedFile) && DateTime.UtcNow < deadline)
                    {
                        await Task.Yield();
                    }

                    watch.Restart();
                    await new ImageBuilder(layout).BuildAsync(input, "watched", watcher, default);
                    watched.Add(watch.Elapsed.TotalSeconds);
                }

                var watchedPlans = new List<double>();
                for (var n = 0; n < 5; n++)
                {
                    watch.Restart();
                    var planned2 = LayerPlanner.Plan(input, watcher.Walk);
                    _ = planned2.Select(l => l.StatKey()).ToList();
                    watchedPlans.Add(watch.Elapsed.TotalSeconds);
                }

                Console.WriteLine($"  of which the plan from the watched trees and its stat keys: median {watchedPlans.Order().ElementAt(2):0.000} s");
                var watchedMedian = watched.Order().ElementAt(watched.Count / 2);
                Console.WriteLine($"capstan warm rebuild, watch mode: median of {watched.Count} {watchedMedian:0.000} s ({watchedMedian / coldTime * 100:0.0}% of cold)");
            }
            Console.WriteLine($"capstan warm rebuild:    first {warmTimes[0]:0.00} s ({warmTimes[0] / coldTime * 100:0.0}% of cold), median of {warmTimes.Count} {warmMedian:0.00} s ({warmMedian / coldTime * 100:0.0}% of cold); " +
                $"one changed file each; recompressed {string.Join(", ", recompressed)}; largest push {pushedWarm / 1048576.0:0.00} MiB = {pushedWarm * 100.0 / imageBytes:0.00}% of the image");

            var second = Path.Combine(work, "php-1.40");
            Run("cp", "-a", tree, second);
            var changed = Directory.EnumerateFiles(Path.Combine(second, "includes"), "*.php", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(5).ToList();
            foreach (var file in changed)
            {
                await File.AppendAllTextAsync(file, "\n// 1.40\n");
            }

            var both = input with { Sources = [new ImageSource("php-1.39", tree), new ImageSource("php-1.40", second)] };
            watch.Restart();
            var two = await new ImageBuilder(layout).BuildAsync(both, "two", default);
            var twoTime = watch.Elapsed.TotalSeconds;
            var added = two.Flavours[0].Layers.Where(l => l.Name.StartsWith("php-1.40/", StringComparison.Ordinal)).ToList();
            var uniqueBytes = changed.Sum(f => new FileInfo(f).Length);
            using (var push = new RegistryClient(registryUri, "mediawiki", null))
            {
                await new ImageCopier(layout, push).CopyAsync("two", "two", default);
                Console.WriteLine($"capstan second version:  {twoTime:0.00} s; {changed.Count} files differ ({uniqueBytes / 1024.0:0.0} KiB); its layers: {added.Sum(l => l.Blob.Size) / 1024.0:0.0} KiB compressed " +
                    $"({added.Sum(l => l.Shared)} files stored as links to 1.39); push sent {push.BytesUploaded / 1024.0:0.0} KiB = {push.BytesUploaded * 100.0 / imageBytes:0.00}% of one version");
            }

            return 0;
        }
        finally
        {
            await registry.DisposeAsync();
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// Where a cold build's time goes, measured in stages that each add one step to the one before, over every layer
    /// with the builder's parallelism (page cache warm): the walk and plan; reading every file; reading into the tar
    /// stream; hashing the tar (DiffID); compressing it (without writing); the rest of the cold build is writing the
    /// blobs and the caches.
    /// </summary>
    private static void Breakdown(BuildInput input, double coldTime)
    {
        static double Best(Action run)
        {
            var best = double.MaxValue;
            for (var n = 0; n < 3; n++)
            {
                var watch = Stopwatch.StartNew();
                run();
                best = Math.Min(best, watch.Elapsed.TotalSeconds);
            }

            return best;
        }

        IReadOnlyList<PlannedLayer> plan = [];
        var planTime = Best(() => plan = LayerPlanner.Plan(input));
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        var buffer = new ThreadLocal<byte[]>(() => new byte[1 << 16]);
        var read = Best(() => Parallel.ForEach(plan, options, layer =>
        {
            foreach (var entry in layer.Entries.Where(e => e.Kind == EntryKind.File))
            {
                using var file = new FileStream(entry.Source!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                while (file.Read(buffer.Value!) > 0)
                {
                }
            }
        }));
        var tar = Best(() => Parallel.ForEach(plan, options, layer => ImageBuilder.WriteTar(layer, Stream.Null, input.Epoch)));
        var hash = Best(() => Parallel.ForEach(plan, options, layer =>
        {
            using var hashing = new HashingStream(null);
            ImageBuilder.WriteTar(layer, hashing, input.Epoch);
        }));
        var compress = Best(() => Parallel.ForEach(plan, options, layer =>
        {
            using var hashing = new HashingStream(null);
            using var compressed = new ParallelCompressStream(Stream.Null, input.Spec.Compression);
            using (var tee = new TeeStream(hashing, compressed))
            {
                ImageBuilder.WriteTar(layer, tee, input.Epoch);
            }

            compressed.Complete();
        }));
        string Part(string what, double seconds) => $"{what} {seconds:0.000} s ({seconds / coldTime * 100:0}%)";
        Console.WriteLine("  where the cold build's time goes (best of 3 per stage, each stage adding one step): " + string.Join(", ",
            Part("walk and plan", planTime), Part("read", read), Part("tar", tar - read), Part("hash", hash - tar), Part("compress", compress - hash),
            Part("write blobs and caches (the rest)", Math.Max(0, coldTime - planTime - compress))));
    }

    private static (double Seconds, long Bytes) TarGzip(string tree)
    {
        var watch = Stopwatch.StartNew();
        var tar = Start("tar", "-C", Path.GetDirectoryName(tree)!, "-cf", "-", Path.GetFileName(tree));
        var gzip = Start("gzip", "-1");
        var feed = Task.Run(() =>
        {
            tar.StandardOutput.BaseStream.CopyTo(gzip.StandardInput.BaseStream);
            gzip.StandardInput.Close();
        });
        long total = 0;
        var buffer = new byte[1 << 16];
        int read;
        while ((read = gzip.StandardOutput.BaseStream.Read(buffer)) > 0)
        {
            total += read;
        }

        feed.Wait();
        tar.WaitForExit();
        gzip.WaitForExit();
        return (watch.Elapsed.TotalSeconds, total);
    }

    private static double? Umoci(string tree, string work)
    {
        if (!File.Exists("/usr/bin/umoci"))
        {
            return null;
        }

        var image = Path.Combine(work, "umoci");
        Run("umoci", "init", "--layout", image);
        Run("umoci", "new", "--image", image + ":base");
        var bundle = Path.Combine(work, "bundle");
        Run("umoci", "unpack", "--rootless", "--image", image + ":base", bundle);
        var target = Path.Combine(bundle, "rootfs", "srv", "mediawiki");
        Directory.CreateDirectory(target);
        Run("cp", "-a", tree, Path.Combine(target, "php-1.39"));
        var watch = Stopwatch.StartNew();
        Run("umoci", "repack", "--image", image + ":new", bundle);
        return watch.Elapsed.TotalSeconds;
    }

    private static Process Start(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    internal static void Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var err = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed: {err.Result}");
        }
    }
}
