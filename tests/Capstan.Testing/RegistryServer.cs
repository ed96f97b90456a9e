using System.Diagnostics;

namespace Capstan.Testing;

/// <summary>
/// A real OCI registry (Debian's docker-registry, the CNCF distribution) on a free loopback port with a temporary
/// storage root, started for the tests and stopped after them.
/// </summary>
public sealed class RegistryServer : IAsyncLifetime
{
    private Process? _process;

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "capstan-registry-" + Guid.NewGuid().ToString("N"));

    public int Port { get; private set; }

    /// <summary>The registry's address for image references: <c>http://127.0.0.1:PORT</c>.</summary>
    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>Where a blob is stored on disk (to corrupt it in a test).</summary>
    public string BlobFile(string digest) =>
        Path.Combine(Root, "data", "docker", "registry", "v2", "blobs", "sha256", digest[7..9], digest[7..], "data");

    public static string Binary() =>
        new[] { "/usr/bin/docker-registry", "/usr/bin/registry" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("docker-registry is not installed: run 'apt-get install docker-registry' (.ci/run does)");

    public async Task InitializeAsync()
    {
        Port = EtcdServer.FreePort();
        Directory.CreateDirectory(Root);
        var config = Path.Combine(Root, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: {Path.Combine(Root, "data")}
              cache:
                blobdescriptor: ""
            http:
              addr: 127.0.0.1:{Port}
            """);
        var psi = new ProcessStartInfo(Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{Port}/v2/"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(50);
        }

        throw new InvalidOperationException($"docker-registry did not start on port {Port}");
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }

        return Task.CompletedTask;
    }
}
