using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Security;

namespace Capstan.LocalCluster;

/// <summary>
/// A connection to the local cluster of one datacenter (<c>local://eqiad</c>): either the server that
/// <c>capstan local serve</c> runs (found through its lock and URL files), or a server hosted in this process for its
/// duration. Only the process holding the directory's lock ever writes the directory.
/// </summary>
public sealed class LocalClusterHost : IAsyncDisposable
{
    private const string LockFile = "cluster.lock";
    private const string ServerFile = "server.json";

    private readonly FileStream? _lock;

    private LocalClusterHost(Uri url, string token, string authorityPem, LocalClusterServer? server, FileStream? lockStream, string directory)
    {
        Url = url;
        Token = token;
        CertificateAuthorityPem = authorityPem;
        Server = server;
        _lock = lockStream;
        Directory = directory;
    }

    /// <summary>The API server's URL.</summary>
    public Uri Url { get; }

    /// <summary>The administrator's bearer token.</summary>
    public string Token { get; }

    /// <summary>The PEM of the CA the server's certificate is signed by.</summary>
    public string CertificateAuthorityPem { get; }

    /// <summary>The server when this process hosts it; null when another process does.</summary>
    public LocalClusterServer? Server { get; }

    /// <summary>The cluster's data directory.</summary>
    public string Directory { get; }

    /// <summary>
    /// Where the embedded cluster <c>local://NAME</c> of a repo keeps its objects and <c>server.json</c>: named by the
    /// cluster, not by the datacenter that uses it (<see cref="ClusterName"/> reads it from a datacenter's cluster).
    /// </summary>
    public static string DirectoryFor(string repoRoot, string clusterName) => Path.Combine(repoRoot, ".capstan", "clusters", clusterName);

    /// <summary>The NAME of a <c>local://NAME</c> cluster, or null for any other cluster.</summary>
    public static string? ClusterName(string cluster) =>
        cluster.StartsWith("local://", StringComparison.Ordinal) ? cluster["local://".Length..] : null;

    /// <summary>
    /// Connects to the running server of the directory, or starts one in this process when none runs. With
    /// <paramref name="requireOwnServer"/> (for <c>local serve</c>) a running server is an error instead.
    /// </summary>
    public static async Task<LocalClusterHost> OpenAsync(string directory, LocalClusterOptions options, bool requireOwnServer, CancellationToken cancellationToken)
    {
        PrivateFiles.Directory(directory);
        var lockPath = Path.Combine(directory, LockFile);
        FileStream? lockStream = null;
        try
        {
            lockStream = new FileStream(lockPath, PrivateFiles.Options(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            var running = RunningServer(directory);
            if (requireOwnServer || running is null)
            {
                throw new UserInputException(running is null
                    ? $"the local cluster in {directory} is locked by another process"
                    : $"a local cluster server already runs for {directory} at {running.Value.Url} (pid {ReadServer(directory)?["pid"]})");
            }

            return new LocalClusterHost(running.Value.Url, running.Value.Token, running.Value.Authority, null, null, directory);
        }

        try
        {
            var server = await LocalClusterServer.StartAsync(options with { DataDirectory = directory }, cancellationToken);
            await PrivateFiles.WriteAllTextAsync(Path.Combine(directory, ServerFile), new JsonObject
            {
                ["url"] = server.Url.ToString(),
                ["pid"] = Environment.ProcessId,
                ["token"] = server.AdminToken,
                ["certificateAuthority"] = server.CertificateAuthorityPem,
            }.ToJsonString(), cancellationToken);
            return new LocalClusterHost(server.Url, server.AdminToken, server.CertificateAuthorityPem!, server, lockStream, directory);
        }
        catch
        {
            await lockStream.DisposeAsync();
            throw;
        }
    }

    /// <summary>Deletes a local cluster's data; refuses while a server runs for it.</summary>
    public static void Reset(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return;
        }

        try
        {
            using (new FileStream(Path.Combine(directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            {
            }
        }
        catch (IOException)
        {
            throw new UserInputException($"the local cluster in {directory} is in use (a 'capstan local serve' runs for it); stop it first");
        }

        System.IO.Directory.Delete(directory, recursive: true);
    }

    /// <summary>The address, admin token and CA a server of the directory wrote last (it may have stopped since), or null.</summary>
    public static (Uri Url, string Token, string Authority)? RunningServer(string directory) =>
        ReadServer(directory) is { } server && server["url"]?.GetValue<string>() is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri) &&
        server["token"]?.GetValue<string>() is { } token && server["certificateAuthority"]?.GetValue<string>() is { } authority
            ? (uri, token, authority) : null;

    private static JsonObject? ReadServer(string directory)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(Path.Combine(directory, ServerFile))) as JsonObject;
        }
        catch (Exception ex) when (ex is IOException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>A kubeconfig for the server, for kubectl and other clients.</summary>
    public string Kubeconfig(string name) => KubeconfigFor(name, Url, Token, CertificateAuthorityPem);

    /// <summary>A kubeconfig for a served cluster (its URL, admin token and CA), with one context named <paramref name="name"/>.</summary>
    public static string KubeconfigFor(string name, Uri url, string token, string authorityPem) => Capstan.Core.Yaml.YamlEmitter.Emit(new JsonObject
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Config",
        ["clusters"] = new JsonArray(new JsonObject { ["name"] = name, ["cluster"] = new JsonObject
        {
            ["server"] = url.ToString().TrimEnd('/'),
            ["certificate-authority-data"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(authorityPem)),
        } }),
        ["users"] = new JsonArray(new JsonObject { ["name"] = name, ["user"] = new JsonObject { ["token"] = token } }),
        ["contexts"] = new JsonArray(new JsonObject { ["name"] = name, ["context"] = new JsonObject { ["cluster"] = name, ["user"] = name } }),
        ["current-context"] = name,
    });

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
            File.Delete(Path.Combine(Directory, ServerFile));
        }

        if (_lock is not null)
        {
            await _lock.DisposeAsync();
        }
    }
}
