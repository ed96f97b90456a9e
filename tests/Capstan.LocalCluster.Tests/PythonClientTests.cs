using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>A second official client, the Kubernetes Python client (Debian's python3-kubernetes), against the embedded server.</summary>
public sealed class PythonClientTests : IAsyncLifetime
{
    /// <summary>Debian's interpreter, which has the package (a python3 earlier on PATH may not).</summary>
    private const string Python = "/usr/bin/python3";

    private readonly string _dir = Directory.CreateTempSubdirectory("capstan-python-").FullName;
    private Cluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await Cluster.StartAsync();

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task The_python_client_creates_lists_patches_watches_scales_and_deletes()
    {
        var kubeconfig = Path.Combine(_dir, "kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, _cluster.Kubeconfig());
        var script = Path.Combine(AppContext.BaseDirectory, "python", "smoke.py");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, kubeconfig, "py-smoke" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90)))
        {
            await process.WaitForExitAsync(cts.Token);
        }

        Assert.True(process.ExitCode == 0, await stderr);
        var seen = JsonNode.Parse(await stdout)!;
        Assert.Contains("settings", seen["listed"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal("staging", seen["patched"]!["mode"]!.GetValue<string>());
        Assert.Equal("on", seen["patched"]!["tracing"]!.GetValue<string>());
        Assert.Equal(3, seen["scale"]!.GetValue<int>());
        Assert.Equal(404, seen["after_delete"]!.GetValue<int>());
        Assert.Equal(
            ["ADDED settings", "MODIFIED settings", "MODIFIED settings", "DELETED settings"],
            seen["events"]!.AsArray().Select(e => $"{e![0]} {e[1]}"));
        Assert.Equal("staging", seen["events"]![3]![2]!["mode"]!.GetValue<string>());
        Assert.Equal("""{"k":"2","l":"3"}""", seen["replaced_data"]!.ToJsonString());
        Assert.Equal(["c"], seen["after_collection_delete"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal("""{"phase":"Pending","qos":"BestEffort","pull":"IfNotPresent","scheduler":"default-scheduler","account":"default","links":true}""", seen["created_pod"]!.ToJsonString());
        Assert.Equal("""{"ids":true,"qos":"BestEffort"}""", seen["started_pod"]!.ToJsonString());
        Assert.All(seen["nodes"]!.AsArray(), n => Assert.True(n!.GetValue<bool>()));
        Assert.True(seen["service_status"]!.GetValue<bool>());
        Assert.Equal("one-off", seen["deleted_pod"]!.GetValue<string>());
        Assert.Equal(["ConfigMap", "DaemonSet", "Service"], seen["from_yaml"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(1, seen["daemon_set_ready"]!.GetValue<int>());
    }
}
