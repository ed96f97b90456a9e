using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Capstan.Testing;

/// <summary>
/// A real etcd (Debian's etcd-server) on free loopback ports with a temporary data directory, started for the tests
/// and stopped after them.
/// </summary>
public sealed class EtcdServer : IAsyncLifetime
{
    private Process? _process;

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "capstan-etcd-" + Guid.NewGuid().ToString("N"));

    public int ClientPort { get; private set; }

    public int PeerPort { get; private set; }

    public Uri Endpoint => new($"http://127.0.0.1:{ClientPort}");

    public string Address => $"etcd://127.0.0.1:{ClientPort}";

    public static string Binary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Append("/usr/bin"))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("etcd is not installed: run 'apt-get install etcd-server' (.ci/run does)");
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task InitializeAsync()
    {
        ClientPort = FreePort();
        PeerPort = FreePort();
        await StartAsync();
    }

    public async Task StartAsync()
    {
        _process = Launch(
        [
            "--name", "capstan-test", "--data-dir", DataDir,
            "--listen-client-urls", $"http://127.0.0.1:{ClientPort}", "--advertise-client-urls", $"http://127.0.0.1:{ClientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{PeerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{PeerPort}",
            "--initial-cluster", $"capstan-test=http://127.0.0.1:{PeerPort}",
        ]);
        await Readiness.WaitAsync(new Uri(Endpoint, "/health"), _process, "etcd");
    }

    /// <summary>Starts etcd with the given arguments, its output drained (never a shell).</summary>
    public static Process Launch(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Freezes the server (SIGSTOP): it holds its connections and answers nothing until <see cref="Resume"/>.</summary>
    public void Pause() => Signal("-STOP");

    /// <summary>Lets a paused server run again (SIGCONT).</summary>
    public void Resume() => Signal("-CONT");

    private void Signal(string signal)
    {
        var psi = new ProcessStartInfo("kill") { UseShellExecute = false };
        psi.ArgumentList.Add(signal);
        psi.ArgumentList.Add(_process!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var kill = Process.Start(psi)!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public Task DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        if (Directory.Exists(DataDir))
        {
            Directory.Delete(DataDir, recursive: true);
        }

        return Task.CompletedTask;
    }
}
