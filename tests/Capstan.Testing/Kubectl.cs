using System.Diagnostics;

namespace Capstan.Testing;

/// <summary>Runs the real kubectl (no shell) with a kubeconfig file, as an outside client of a cluster.</summary>
public static class Kubectl
{
    /// <summary>Runs kubectl with <paramref name="kubeconfig"/> (its cache under that file's directory); its exit code and output.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(string kubeconfig, params string[] args)
    {
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["KUBECONFIG"] = kubeconfig;
        psi.Environment["HOME"] = Path.GetDirectoryName(Path.GetFullPath(kubeconfig))!;
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("kubectl did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
