using System.Diagnostics;
using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.Bench;

/// <summary>
/// Renders the whole example farm (load the repo, layer values, render every release in both datacenters,
/// serialize every object to YAML) N times in-process, and, when given a helm binary and a comparable chart,
/// runs `helm template` once per release of the farm on the same machine: the baseline.
/// </summary>
internal static class RenderBenchmark
{
    public static int Run(string[] args)
    {
        var repo = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var iterations = int.Parse(BenchTools.Option(args, "--iterations") ?? "50", CultureInfo.InvariantCulture);
        var helm = BenchTools.Option(args, "--helm");
        var chart = BenchTools.Option(args, "--chart");

        var files = new DirectoryRepoFiles(repo);
        var state = DynamicStateFile.Parse(files.ReadText("state.yaml"), "state.yaml", [.. RepoLoader.Load(files).Model.DatacenterNames]);

        // The first render in a fresh process pays for JIT compilation; report it, then warm up until the tiered
        // JIT has settled so that the figures are of steady-state rendering.
        var cold = Stopwatch.StartNew();
        var (releases, objects, bytes) = RenderOnce(files, state);
        var coldMs = cold.Elapsed.TotalMilliseconds;
        for (var i = 0; i < 60; i++)
        {
            RenderOnce(files, state);
        }

        var times = new List<double>(iterations);
        for (var i = 0; i < iterations; i++)
        {
            var sw = Stopwatch.StartNew();
            RenderOnce(files, state);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        var median = times[times.Count / 2];
        var perRelease = median / releases;
        Console.WriteLine($"farm: {releases} releases, {objects} objects, {bytes / 1024} KiB of YAML per render");
        Console.WriteLine($"capstan render (full farm, in-process, {iterations} runs): median {median:F1} ms, min {times[0]:F1} ms, p90 {times[(int)(times.Count * 0.9)]:F1} ms");
        Console.WriteLine($"capstan render, first in a fresh process (JIT included): {coldMs:F0} ms");
        Console.WriteLine($"capstan render: {perRelease:F3} ms per release, {releases / (median / 1000):F0} releases/s");

        if (helm is null || chart is null)
        {
            Console.WriteLine("helm: not measured (pass --helm PATH --chart DIR; bench/get-helm.sh fetches a helm binary)");
            return 0;
        }

        // One `helm template` per release, as a helmfile-driven deploy runs it.
        RunHelm(helm, chart);
        var helmSw = Stopwatch.StartNew();
        for (var i = 0; i < releases; i++)
        {
            RunHelm(helm, chart);
        }

        var helmPerRelease = helmSw.Elapsed.TotalMilliseconds / releases;
        Console.WriteLine($"helm template ({releases} runs of {chart}): {helmSw.Elapsed.TotalMilliseconds:F0} ms, {helmPerRelease:F1} ms per release");
        Console.WriteLine($"ratio: capstan is {helmPerRelease / perRelease:F0}x faster per release than helm template");
        return 0;
    }

    private static (int Releases, int Objects, long Bytes) RenderOnce(DirectoryRepoFiles files, DynamicState state)
    {
        var (model, _) = RepoLoader.Load(files);
        var result = new FarmRenderer(model, files).Render(new RenderSelection(), state);
        var texts = ManifestText.ToYaml(result.Releases, revealSecrets: false);
        return (result.Releases.Count, texts.Count, texts.Sum(t => (long)t.Text.Length));
    }

    private static void RunHelm(string helm, string chart)
    {
        var psi = new ProcessStartInfo(helm)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "template", "main", chart, "--namespace", "mw-web" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"helm template failed with exit code {process.ExitCode}");
        }
    }
}
