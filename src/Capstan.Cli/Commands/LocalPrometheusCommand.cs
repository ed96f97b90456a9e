using System.CommandLine;
using System.Diagnostics;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.LocalCluster;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary>
/// <c>capstan local prometheus</c>: runs Debian's Prometheus on 127.0.0.1, scraping the simulated pod traffic of the
/// repo's served local clusters, so that the gates of capstan.yaml can be judged on the embedded default.
/// </summary>
internal sealed class LocalPrometheusCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    private const string Binary = "/usr/bin/prometheus";

    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var port = new Option<int>("--port") { Description = "The loopback port of Prometheus (capstan.yaml's prometheus.url names it)", DefaultValueFactory = _ => 9090, HelpName = "N" };
        var interval = new Option<string>("--scrape-interval") { Description = "How often each cluster is scraped (a gate's interval should be at least this)", DefaultValueFactory = _ => "5s", HelpName = "DURATION" };
        var command = new Command(
            "prometheus",
            "Run Prometheus on 127.0.0.1 scraping the pods' simulated traffic of every served local cluster of the repo (start them with 'capstan local serve --dc DC'), until interrupted")
        {
            repo, port, interval,
        };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            if (parse.GetValue(port) is < 1 or > 65535)
            {
                throw new UserInputException($"--port must be between 1 and 65535, not {parse.GetValue(port)}");
            }

            var scrape = Durations.TryParse(parse.GetValue(interval)!) ?? throw new UserInputException($"--scrape-interval '{parse.GetValue(interval)}' is not a duration (a whole number and s or m: 5s)");
            if (!File.Exists(Binary))
            {
                error.WriteLine("capstan: error: Prometheus is not installed; install Debian's:");
                error.WriteLine("  sudo apt-get install --no-install-recommends prometheus");
                return ExitCodes.Failure;
            }

            var targets = new List<PodMetricsTarget>();
            var notServed = new List<string>();
            foreach (var dc in session.Model.Datacenters.Where(d => LocalClusterHost.ClusterName(d.Cluster) is not null))
            {
                if (LocalClusterHost.RunningServer(LocalClusterHost.DirectoryFor(session.Files.Root, LocalClusterHost.ClusterName(dc.Cluster)!)) is { } served)
                {
                    targets.Add(new PodMetricsTarget(dc.Name, served.Url, served.Authority, served.Token));
                }
                else
                {
                    notServed.Add(dc.Name);
                }
            }

            if (targets.Count == 0)
            {
                throw new UserInputException(
                    notServed.Count == 0
                        ? "the repo has no local:// cluster; point a Prometheus of your own at your clusters"
                        : $"no local cluster of the repo is served; start them first: {string.Join(" and ", notServed.Select(dc => $"'capstan local serve --dc {dc}'"))}");
            }

            var directory = Path.Combine(session.Files.Root, ".capstan", "prometheus");
            var config = Path.Combine(directory, "prometheus.yml");
            await File.WriteAllTextAsync(config, PodMetricsScrape.WriteConfig(directory, targets, scrape), ct);
            var start = new ProcessStartInfo(Binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in new[]
            {
                "--config.file=" + config, "--storage.tsdb.path=" + Path.Combine(directory, "data"), $"--web.listen-address=127.0.0.1:{parse.GetValue(port)}",
                "--storage.tsdb.retention.time=90d", "--log.level=warn", "--web.console.templates=" + directory, "--web.console.libraries=" + directory,
            })
            {
                start.ArgumentList.Add(arg);
            }

            using var prometheus = Process.Start(start) ?? throw new InvalidOperationException("Prometheus did not start");
            prometheus.ErrorDataReceived += (_, e) => Forward(e.Data);
            prometheus.OutputDataReceived += (_, e) => Forward(e.Data);
            prometheus.BeginErrorReadLine();
            prometheus.BeginOutputReadLine();
            console.Profile.Out.Writer.WriteLine($"http://127.0.0.1:{parse.GetValue(port)}");
            console.Profile.Out.Writer.Flush();
            error.WriteLine($"capstan: Prometheus scrapes {string.Join(", ", targets.Select(t => $"local://{t.Datacenter}"))} every {Durations.Human(scrape)}" +
                (notServed.Count > 0 ? $" ({string.Join(", ", notServed)} not served: not scraped)" : string.Empty) + "; until interrupted (Ctrl-C)");
            try
            {
                await prometheus.WaitForExitAsync(ct);
                error.WriteLine($"capstan: error: Prometheus stopped (exit {prometheus.ExitCode})");
                return ExitCodes.Failure;
            }
            catch (OperationCanceledException)
            {
                prometheus.Kill(entireProcessTree: true);
                await prometheus.WaitForExitAsync(CancellationToken.None);
                error.WriteLine("capstan: Prometheus stopped");
                return ExitCodes.Success;
            }
        });
        return command;
    }

    private void Forward(string? line)
    {
        if (line is not null)
        {
            error.WriteLine("prometheus: " + line);
        }
    }
}
