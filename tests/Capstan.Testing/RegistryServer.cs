using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Capstan.Testing;

/// <summary>
/// A real OCI registry (Debian's docker-registry, the CNCF distribution) on a free loopback port with a temporary
/// storage root, started for the tests and stopped after them.
/// </summary>
public class RegistryServer : IAsyncLifetime
{
    /// <summary>With a user, the registry asks for Basic credentials (htpasswd, bcrypt).</summary>
    protected virtual (string User, string Password)? Credentials => null;

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
            {Auth()}
            """);
        var psi = new ProcessStartInfo(Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        await Readiness.WaitAsync(new Uri($"http://127.0.0.1:{Port}/v2/"), _process, "docker-registry", System.Net.HttpStatusCode.Unauthorized);
    }

    private string Auth()
    {
        if (Credentials is not { } c)
        {
            return string.Empty;
        }

        var file = Path.Combine(Root, "htpasswd");
        File.WriteAllText(file, $"{c.User}:{Bcrypt(c.Password)}\n");
        return $"auth:\n  htpasswd:\n    realm: capstan-test\n    path: {file}";
    }

    /// <summary>A bcrypt hash from the system's libcrypt (libxcrypt), as htpasswd -B writes it.</summary>
    private static string Bcrypt(string password)
    {
        var salt = "$2b$05$" + new string([.. Enumerable.Range(0, 22).Select(_ => "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[Random.Shared.Next(64)])]);
        var result = Marshal.PtrToStringUTF8(Crypt(password, salt));
        return result is { Length: > 20 } && result.StartsWith("$2b$", StringComparison.Ordinal)
            ? result
            : throw new InvalidOperationException("libcrypt gave no bcrypt hash");
    }

    [DllImport("libcrypt.so.1", EntryPoint = "crypt")]
    private static extern IntPtr Crypt([MarshalAs(UnmanagedType.LPUTF8Str)] string key, [MarshalAs(UnmanagedType.LPUTF8Str)] string salt);

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

/// <summary>A registry that wants Basic credentials: user <c>deployer</c>, password <see cref="Password"/>.</summary>
public sealed class AuthRegistryServer : RegistryServer
{
    public const string User = "deployer";

    public const string Password = "s3cret-pass";

    protected override (string User, string Password)? Credentials => (User, Password);
}
