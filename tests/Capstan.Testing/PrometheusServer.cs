using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster;

namespace Capstan.Testing;

/// <summary>An embedded cluster that a Prometheus scrapes, as the datacenter it stands for.</summary>
public sealed record ScrapeTarget(string Datacenter, LocalClusterServer Server);

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c>) on a free loopback port with a temporary data directory and a
/// generated configuration: it scrapes the pods' simulated traffic of embedded clusters (over TLS, verified against
/// their CA, with their token), and it may start from a recorded history (OpenMetrics text, turned into blocks by
/// <c>promtool tsdb create-blocks-from openmetrics</c>).
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log;

    private PrometheusServer(Process process, string root, int port, StringBuilder log)
    {
        _process = process;
        Root = root;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _log = log;
    }

    /// <summary>The server's address.</summary>
    public Uri Url { get; }

    /// <summary>Its data and configuration directory.</summary>
    public string Root { get; }

    /// <summary>What Prometheus logged (for a failing test's message).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static string Binary(string name) =>
        File.Exists("/usr/bin/" + name) ? "/usr/bin/" + name
            : throw new InvalidOperationException($"{name} is not installed: run 'apt-get install prometheus' (./test does)");

    /// <summary>Starts a Prometheus scraping the targets every <paramref name="scrapeInterval"/>, from an optional recorded history.</summary>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyList<ScrapeTarget> targets, TimeSpan scrapeInterval, string? openMetricsHistory = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "capstan-prometheus-" + Guid.NewGuid().ToString("N"));
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(data);
        if (openMetricsHistory is not null)
        {
            var input = Path.Combine(root, "history.om");
            await File.WriteAllTextAsync(input, openMetricsHistory);
            var backfill = new ProcessStartInfo(Binary("promtool")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "tsdb", "create-blocks-from", "openmetrics", input, data })
            {
                backfill.ArgumentList.Add(arg);
            }

            using var promtool = Process.Start(backfill)!;
            var output = promtool.StandardOutput.ReadToEndAsync();
            var errors = await promtool.StandardError.ReadToEndAsync();
            await promtool.WaitForExitAsync();
            if (promtool.ExitCode != 0)
            {
                throw new InvalidOperationException($"promtool could not create blocks from the history: {errors}{await output}");
            }
        }

        var port = EtcdServer.FreePort();
        var config = PodMetricsScrape.WriteConfig(root, [.. targets.Select(t => new PodMetricsTarget(t.Datacenter, t.Server.Url, t.Server.CertificateAuthorityPem!, t.Server.AdminToken))], scrapeInterval);
        var configFile = Path.Combine(root, "prometheus.yml");
        await File.WriteAllTextAsync(configFile, config);
        var psi = new ProcessStartInfo(Binary("prometheus")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "--config.file=" + configFile, "--storage.tsdb.path=" + data, $"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=3650d", "--log.level=warn", "--web.console.templates=" + root, "--web.console.libraries=" + root,
        })
        {
            psi.ArgumentList.Add(arg);
        }

        var log = new StringBuilder();
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, root, port, log);
        try
        {
            await Readiness.WaitAsync(new Uri(server.Url, "-/ready"), process, "prometheus", HttpStatusCode.OK);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Waits (on Prometheus's own answers, at most a minute) until every target was scraped successfully.</summary>
    public async Task WaitForTargetsUpAsync(int count)
    {
        using var http = new HttpClient();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var body = await http.GetFromJsonObjectAsync(new Uri(Url, "api/v1/targets"));
            var active = body?["data"]?["activeTargets"] as JsonArray ?? [];
            if (active.Count(t => t?["health"]?.GetValue<string>() == "up") >= count)
            {
                return;
            }

            if (deadline.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new TimeoutException($"Prometheus scraped no target successfully within a minute: {string.Join("; ", active.Select(t => t?["lastError"]?.GetValue<string>()))}\n{Log}");
            }

            await Task.Delay(100);
        }
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

internal static class HttpJson
{
    public static async Task<JsonObject?> GetFromJsonObjectAsync(this HttpClient http, Uri url) =>
        JsonNode.Parse(await http.GetStringAsync(url)) as JsonObject;
}
