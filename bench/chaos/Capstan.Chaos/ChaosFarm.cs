using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Kubernetes;
using Capstan.Testing;

namespace Capstan.Chaos;

/// <summary>What a capstan command printed and how it ended (-1: it was killed or timed out).</summary>
public sealed record CliResult(int ExitCode, string Out, string Err);

/// <summary>
/// One run's farm: a copy of the example farm, a <c>capstan local serve</c> process per datacenter (so a fault can kill
/// it), and optionally its own etcd as the state store. Every capstan command runs as a child process of the real CLI.
/// </summary>
public sealed class ChaosFarm : IAsyncDisposable
{
    private static readonly string[] Datacenters = ["eqiad", "codfw"];
    private readonly string _capstan;
    private readonly Dictionary<string, Process> _serve = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);

    private ChaosFarm(string root, string capstan)
    {
        Root = root;
        _capstan = capstan;
    }

    /// <summary>The farm's directory.</summary>
    public string Root { get; }

    /// <summary>The farm's etcd, when it has one.</summary>
    public EtcdServer? Etcd { get; private set; }

    /// <summary>Copies <paramref name="example"/> into <paramref name="root"/> and starts its cluster servers (and etcd).</summary>
    public static async Task<ChaosFarm> CreateAsync(string example, string root, string capstan, bool etcd)
    {
        var farm = new ChaosFarm(FarmCopy.To(example, root), capstan);
        try
        {
            if (etcd)
            {
                farm.Etcd = new EtcdServer();
                await farm.Etcd.InitializeAsync();
                farm._environment["CAPSTAN_STATE"] = farm.Etcd.Address + "?prefix=/chaos-" + Guid.NewGuid().ToString("N")[..8];
            }

            foreach (var dc in Datacenters)
            {
                await farm.StartServeAsync(dc);
            }

            return farm;
        }
        catch
        {
            await farm.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a capstan command to its end (killed after <paramref name="timeout"/>).</summary>
    public async Task<CliResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
        return await WaitAsync(process, timeout);
    }

    /// <summary>Runs a capstan command with the default timeout of two minutes.</summary>
    public Task<CliResult> RunAsync(params string[] args) => RunAsync(TimeSpan.FromMinutes(2), args);

    /// <summary>Starts a capstan command in the farm; its output is collected as it comes.</summary>
    public Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(_capstan);
        foreach (var arg in args.Append("--repo").Append(Root))
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in _environment)
        {
            psi.Environment[key] = value;
        }

        psi.Environment["NO_COLOR"] = "1";
        var process = new Process { StartInfo = psi };
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(error, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        Outputs[process] = (output, error);
        return process;
    }

    /// <summary>Waits for a started command; kills it past <paramref name="timeout"/> (exit code -1).</summary>
    public static async Task<CliResult> WaitAsync(Process process, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var killed = false;
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            killed = true;
        }

        var (output, error) = Outputs.TryGetValue(process, out var o) ? o : (new StringBuilder(), new StringBuilder());
        Outputs.TryRemove(process, out _);
        lock (output)
        {
            lock (error)
            {
                return new CliResult(killed ? -1 : process.ExitCode, output.ToString(), error.ToString());
            }
        }
    }

    /// <summary>Kills a process with SIGKILL, as a crash or an OOM kill would end it.</summary>
    public static void Kill(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// Starts (or restarts) the cluster server of a datacenter and waits until it serves. While a command hosts the
    /// cluster itself (it found no server when it started), the server cannot start: it is tried again until it can.
    /// That includes the moment between the command taking the cluster's lock and writing its <c>server.json</c>, when
    /// the lock is held but no server is announced yet.
    /// </summary>
    public async Task StartServeAsync(string dc)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await StartServeOnceAsync(dc);
                return;
            }
            catch (InvalidOperationException ex) when (HeldByAnother(ex.Message) && attempt < 600)
            {
                await Task.Delay(100);
            }
        }
    }

    private static bool HeldByAnother(string message) =>
        message.Contains("already runs", StringComparison.Ordinal) || message.Contains("locked by another process", StringComparison.Ordinal);

    private async Task StartServeOnceAsync(string dc)
    {
        var process = Start("local", "serve", "--dc", dc);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!Output(process).Contains("https://127.0.0.1:", StringComparison.Ordinal))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                var result = await WaitAsync(process, TimeSpan.FromSeconds(5));
                throw new InvalidOperationException($"local serve --dc {dc} did not start: {result.Err}{result.Out}");
            }

            await Task.Delay(50);
        }

        _serve[dc] = process;
    }

    /// <summary>SIGKILLs the cluster server of a datacenter.</summary>
    public async Task KillServeAsync(string dc)
    {
        if (_serve.Remove(dc, out var process))
        {
            Kill(process);
            await WaitAsync(process, TimeSpan.FromSeconds(10));
            process.Dispose();
        }
    }

    /// <summary>A client of a datacenter's cluster, as its server's file says (the admin).</summary>
    public KubeClient Client(string dc)
    {
        var server = Server(dc);
        return new KubeClient(new ClusterConnection(server.Url, Encoding.UTF8.GetBytes(server.Authority), Token: server.Token), new KubeClientOptions());
    }

    /// <summary>Where a datacenter's cluster is served now.</summary>
    public (Uri Url, string Token, string Authority) Server(string dc) =>
        LocalCluster.LocalClusterHost.RunningServer(LocalCluster.LocalClusterHost.DirectoryFor(Root, dc))
        ?? throw new InvalidOperationException($"no cluster server for {dc}");

    /// <summary>Injects an API fault into a datacenter's cluster (see <c>/capstan/faults</c>).</summary>
    public async Task InjectAsync(string dc, JsonObject fault)
    {
        var server = Server(dc);
        using var http = Cluster.TrustingHttp(server.Url, server.Authority, server.Token);
        using var response = await http.PostAsync("/capstan/faults", new StringContent(fault.ToJsonString(), Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Removes every injected fault (before the recovery: the outage is over).</summary>
    public async Task ClearFaultsAsync()
    {
        foreach (var dc in _serve.Keys)
        {
            var server = Server(dc);
            using var http = Cluster.TrustingHttp(server.Url, server.Authority, server.Token);
            using var response = await http.DeleteAsync("/capstan/faults");
        }
    }

    /// <summary>The datacenters whose servers run.</summary>
    public IReadOnlyCollection<string> Served => _serve.Keys;

    public async ValueTask DisposeAsync()
    {
        foreach (var dc in _serve.Keys.ToList())
        {
            await KillServeAsync(dc);
        }

        if (Etcd is not null)
        {
            await Etcd.DisposeAsync();
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a process that is going away; the temporary directory is cleaned later.
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Process, (StringBuilder Out, StringBuilder Err)> Outputs = new();

    private static string Output(Process process)
    {
        var (output, _) = Outputs[process];
        lock (output)
        {
            return output.ToString();
        }
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (builder)
        {
            builder.Append(line).Append('\n');
        }
    }
}
