using System.Diagnostics;
using System.Globalization;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.Images;
using Capstan.LocalCluster;
using Capstan.State.Files;

namespace Capstan.Bench;

/// <summary>
/// Image distribution: mw-web's main release (352 replicas) rolled out onto 200 simulated nodes that pull at 1 Gbit/s
/// each from a registry that sends 10 Gbit/s in all, with the MediaWiki image built from a real tree (Debian's) into
/// the farm's layout, so the nodes pull its real layers. Two changes, each rolled out without and with a pre-pull
/// (bounded to 1 GB/s of egress): one changed file (one small layer differs), and a new build of every layer (as a new
/// MediaWiki version). Reported: rollout time, the pre-pull's time, the registry's bytes and its peak egress.
/// </summary>
internal static class PullBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var example = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var source = BenchTools.Option(args, "--tree") ?? "/usr/share/mediawiki";
        var nodes = int.Parse(BenchTools.Option(args, "--nodes") ?? "200", CultureInfo.InvariantCulture);
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-pull-" + Guid.NewGuid().ToString("N"));
        try
        {
            DeployBenchmark.CopyFarm(example, root);
            var tree = Path.Combine(root, "tree", "php-1.39");
            Directory.CreateDirectory(Path.GetDirectoryName(tree)!);
            ImageBenchmark.Run("cp", "-a", source, tree);
            var layout = new OciLayout(Path.Combine(root, ".capstan", "images"));
            var spec = ImageBuildSpec.Default;
            var files = new DirectoryRepoFiles(root);

            // A pull pod's command exits at once; the rest as a small real cluster.
            var timing = SimulationTiming.Realistic with { JobRun = TimeSpan.FromSeconds(0.5), Tick = TimeSpan.FromMilliseconds(50) };
            var options = new LocalClusterOptions { Timing = timing, Nodes = nodes, PullBandwidth = 125_000_000, RegistryEgress = 1_250_000_000, DefaultImageBytes = 20L << 20 };
            var prePull = new PrePullSettings(true, 1_000_000_000, 125_000_000, TimeSpan.FromMinutes(10));
            var state = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);
            await using var store = new FileStateStore(Path.Combine(root, ".capstan", "state"));

            var versionDirectory = "php-1.39";
            async Task<(FarmModel Model, long Bytes)> BuildAsync(string tag)
            {
                var built = await new ImageBuilder(layout).BuildAsync(new BuildInput(spec, [new ImageSource(versionDirectory, tree)], null, 1_700_000_000, null), tag, default);
                var flavour = built.Flavours[0];
                File.WriteAllText(Path.Combine(root, "deploy", "images", "default.yaml"),
                    $"images:\n  mediawiki: \"{ImageBuildSpec.LocalRegistry}/mediawiki:{tag}@{flavour.Manifest.Digest}\"\n");
                return (RepoLoader.Load(files).Model, flavour.Layers.Where(l => !l.Reused).Sum(l => l.Blob.Size));
            }

            var (model, imageBytes) = await BuildAsync("v1");
            await using var clusters = await ClusterSet.ConnectAsync(model, ["eqiad"], _ => null, options, default);
            var server = clusters.LocalServer("eqiad")!;
            var selection = new RenderSelection("eqiad", "mw-web", "main");

            async Task<Plan> PlanAsync(FarmModel m)
            {
                var service = new DeployService(m, new FarmRenderer(m, files), clusters, store, TimeProvider.System);
                return (await service.PrepareAsync(new DeployRequest(selection, true, false, Planner.DefaultConcurrency, Executor()), state, default)).Plan;
            }

            async Task RolloutAsync(FarmModel m, Plan plan)
            {
                var service = new DeployService(m, new FarmRenderer(m, files), clusters, store, TimeProvider.System);
                var result = await service.RunAsync(plan, Executor(), SilentObserver.Instance, default);
                if (!result.Succeeded)
                {
                    throw new InvalidOperationException($"the rollout failed: {result.Cause}");
                }
            }

            // The first deploy brings every node the image (and the support releases); not measured.
            var watch = Stopwatch.StartNew();
            await RolloutAsync(model, await PlanAsync(model));
            var first = server.TakeRegistryEgress()!.Value;
            Console.WriteLine($"mw-web main (352 replicas) onto {nodes} nodes at 1 Gbit/s each, registry 10 Gbit/s; MediaWiki image {imageBytes / 1048576.0:0.0} MiB from {source}");
            Console.WriteLine($"first deploy (every node cold): {watch.Elapsed.TotalSeconds:0.0} s, registry sent {first.Bytes / 1e9:0.00} GB, peak {Rates.Describe(first.PeakPerSecond)}");

            var version = 1;
            foreach (var (scenario, change) in new (string, Action)[]
            {
                ("one changed file", () => File.AppendAllText(Directory.EnumerateFiles(Path.Combine(tree, "includes"), "*.php", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First(), $"\n// change {version}\n")),
                ("every layer new (the code under a new version's directory)", () => versionDirectory = $"php-1.{40 + version}"),
            })
            {
                foreach (var warm in new[] { false, true })
                {
                    change();
                    version++;
                    var (next, changed) = await BuildAsync($"v{version}");
                    var plan = await PlanAsync(next);
                    server.TakeRegistryEgress();
                    var prePullTime = 0.0;
                    (long Bytes, double PeakPerSecond) prePullEgress = default;
                    if (warm)
                    {
                        watch.Restart();
                        await new PrePuller(clusters, SilentObserver.Instance, TimeProvider.System).RunAsync(plan, prePull, default);
                        prePullTime = watch.Elapsed.TotalSeconds;
                        prePullEgress = server.TakeRegistryEgress()!.Value;
                    }

                    watch.Restart();
                    await RolloutAsync(next, plan);
                    var rollout = watch.Elapsed.TotalSeconds;
                    var egress = server.TakeRegistryEgress()!.Value;
                    Console.WriteLine($"{scenario}, {changed / 1048576.0:0.0} MiB of new layers, {(warm ? "with pre-pull" : "without pre-pull")}:");
                    if (warm)
                    {
                        Console.WriteLine($"  pre-pull ({prePull.NodesAtOnce} nodes at once): {prePullTime:0.0} s, registry sent {prePullEgress.Bytes / 1e9:0.00} GB, peak {Rates.Describe(prePullEgress.PeakPerSecond)}");
                    }

                    Console.WriteLine($"  rollout: {rollout:0.0} s, registry sent {egress.Bytes / 1e9:0.00} GB, peak {Rates.Describe(egress.PeakPerSecond)}{(warm ? $"; pre-pull + rollout {prePullTime + rollout:0.0} s" : string.Empty)}");
                }
            }
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }

        return 0;
    }

    private static ExecutorOptions Executor() => new() { Actor = "bench", Reason = "bench" };

}
