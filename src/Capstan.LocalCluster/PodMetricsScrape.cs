using System.Globalization;
using System.Text;

namespace Capstan.LocalCluster;

/// <summary>An embedded cluster for a Prometheus to scrape, as the datacenter it stands for: its URL, CA and token.</summary>
public sealed record PodMetricsTarget(string Datacenter, Uri Url, string CertificateAuthorityPem, string Token);

/// <summary>
/// The Prometheus configuration that scrapes the simulated pod traffic of embedded clusters
/// (<c>/capstan/pod-metrics</c>): one job per datacenter, over HTTPS verified against the cluster's CA, with its token
/// read from a file only the user may read, and a <c>datacenter</c> label on every series.
/// </summary>
public static class PodMetricsScrape
{
    /// <summary>Writes the CA and token files of each target into <paramref name="directory"/> and returns the configuration's text.</summary>
    public static string WriteConfig(string directory, IReadOnlyList<PodMetricsTarget> targets, TimeSpan scrapeInterval)
    {
        Directory.CreateDirectory(directory);
        var interval = ((long)scrapeInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
        var config = new StringBuilder($"# Written by capstan: scrapes the simulated pod traffic of the embedded clusters.\nglobal:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n");
        foreach (var target in targets)
        {
            var ca = Path.Combine(directory, $"{target.Datacenter}-ca.pem");
            var token = Path.Combine(directory, $"{target.Datacenter}-token");
            File.WriteAllText(ca, target.CertificateAuthorityPem);
            WritePrivate(token, target.Token);
            config.Append(CultureInfo.InvariantCulture, $"""
                - job_name: capstan-pods-{target.Datacenter}
                  scheme: https
                  metrics_path: /capstan/pod-metrics
                  authorization:
                    credentials_file: {token}
                  tls_config:
                    ca_file: {ca}
                  static_configs:
                    - targets: ["{target.Url.Authority}"]
                      labels:
                        datacenter: {target.Datacenter}

                """);
        }

        return config.ToString();
    }

    private static void WritePrivate(string path, string text)
    {
        if (OperatingSystem.IsWindows())
        {
            File.WriteAllText(path, text);
            return;
        }

        File.Delete(path);
        using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        stream.Write(Encoding.UTF8.GetBytes(text));
    }
}
