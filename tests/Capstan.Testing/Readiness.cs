using System.Diagnostics;
using System.Net;

namespace Capstan.Testing;

/// <summary>Waits for a server the tests started to answer over HTTP.</summary>
public static class Readiness
{
    /// <summary>Polls <paramref name="url"/> until it answers with one of <paramref name="ready"/>; fails when the process exits or after 20 s.</summary>
    public static Task WaitAsync(Uri url, Process process, string what, params HttpStatusCode[] ready) =>
        WaitAsync(url, process, what, new HttpClientHandler(), ready);

    /// <summary>Like the other, through <paramref name="handler"/> (a server with TLS the tests set up).</summary>
    public static async Task WaitAsync(Uri url, Process process, string what, HttpMessageHandler handler, params HttpStatusCode[] ready)
    {
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode || ready.Contains(response.StatusCode))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            if (process.HasExited)
            {
                throw new InvalidOperationException($"{what} exited with code {process.ExitCode}");
            }

            await Task.Delay(50);
        }

        throw new InvalidOperationException($"{what} did not answer at {url} within 20 s");
    }
}
