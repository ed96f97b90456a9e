using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Kubernetes;

/// <summary>A kubeconfig <c>exec</c> credential plugin (<c>client.authentication.k8s.io</c>), as kubectl runs it.</summary>
public sealed record ExecPlugin(
    string Command,
    IReadOnlyList<string> Args,
    IReadOnlyList<KeyValuePair<string, string>> Env,
    string ApiVersion,
    string? InstallHint,
    bool ProvideClusterInfo,
    string InteractiveMode);

/// <summary>Who to act as (kubeconfig <c>as</c>, <c>as-groups</c>, <c>as-uid</c>, <c>as-user-extra</c>).</summary>
public sealed record Impersonation(string? User, IReadOnlyList<string> Groups, string? Uid, IReadOnlyList<KeyValuePair<string, string>> Extra);

/// <summary>The credentials could not be obtained (a failing plugin, an unreadable token file).</summary>
public sealed class KubeCredentialException(string message, Exception? inner = null) : CapstanException(RefusalKind.Failure, message, inner)
{
    /// <inheritdoc/>
    public override string Display => "cannot authenticate to the cluster: " + Message;
}

/// <summary>
/// Puts the user's credentials on every request, as client-go's transport does: a fixed token or basic auth; a
/// <c>tokenFile</c>, read again whenever the file changes (rotated service-account tokens); an exec plugin, run when no
/// token is held or the one held has expired, and again after a 401; and the impersonation headers.
/// </summary>
internal sealed class CredentialsHandler : DelegatingHandler
{
    private readonly ClusterConnection _connection;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private readonly Lock _file = new();
    private string? _fileToken;
    private DateTime _fileStamp;
    private string? _execToken;
    private DateTimeOffset? _execExpiry;

    public CredentialsHandler(ClusterConnection connection, TimeProvider time)
    {
        _connection = connection;
        _time = time;
    }

    /// <summary>How many times the exec plugin has run (for tests and traces).</summary>
    public int PluginRuns { get; private set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Impersonate(request);
        var sent = await AuthorizationAsync(refused: null, cancellationToken);
        request.Headers.Authorization = sent;
        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized && _connection.Exec is not null && request.Content is null or ByteArrayContent)
        {
            // The plugin's token was revoked or expired early: run it again once, as client-go does (once for all the
            // requests refused with that token).
            response.Dispose();
            request.Headers.Authorization = await AuthorizationAsync(refused: sent?.Parameter, cancellationToken);
            response = await base.SendAsync(request, cancellationToken);
        }

        return response;
    }

    private void Impersonate(HttpRequestMessage request)
    {
        if (_connection.Impersonate is not { } who)
        {
            return;
        }

        if (who.User is { } user)
        {
            request.Headers.TryAddWithoutValidation("Impersonate-User", user);
        }

        foreach (var group in who.Groups)
        {
            request.Headers.TryAddWithoutValidation("Impersonate-Group", group);
        }

        if (who.Uid is { } uid)
        {
            request.Headers.TryAddWithoutValidation("Impersonate-Uid", uid);
        }

        foreach (var (key, value) in who.Extra)
        {
            request.Headers.TryAddWithoutValidation("Impersonate-Extra-" + Uri.EscapeDataString(key), value);
        }
    }

    private async Task<AuthenticationHeaderValue?> AuthorizationAsync(string? refused, CancellationToken cancellationToken)
    {
        if (_connection.Token is { } token)
        {
            return new AuthenticationHeaderValue("Bearer", token);
        }

        if (_connection.TokenFile is { } file)
        {
            return new AuthenticationHeaderValue("Bearer", FileToken(file));
        }

        if (_connection.Exec is { } plugin)
        {
            return new AuthenticationHeaderValue("Bearer", await ExecTokenAsync(plugin, refused, cancellationToken));
        }

        return _connection.Username is { } name
            ? new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{name}:{_connection.Password}")))
            : null;
    }

    private string FileToken(string file)
    {
        try
        {
            var stamp = File.GetLastWriteTimeUtc(file);
            lock (_file)
            {
                if (_fileToken is null || stamp != _fileStamp)
                {
                    _fileToken = File.ReadAllText(file).Trim();
                    _fileStamp = stamp;
                }

                return _fileToken;
            }
        }
        catch (IOException ex)
        {
            throw new KubeCredentialException($"cannot read the token file {file}: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new KubeCredentialException($"cannot read the token file {file}: {ex.Message}", ex);
        }
    }

    private async Task<string> ExecTokenAsync(ExecPlugin plugin, string? refused, CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (_execToken is { } held && held != refused && (_execExpiry is null || _execExpiry > _time.GetUtcNow()))
            {
                return held;
            }

            (_execToken, _execExpiry) = await RunPluginAsync(plugin, cancellationToken);
            return _execToken;
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>
    /// Runs the plugin without a shell (arguments passed as they are), with <c>KUBERNETES_EXEC_INFO</c> set, stdin
    /// closed (Capstan runs unattended; an interactive-only plugin is refused) and stderr kept for the error message.
    /// </summary>
    private async Task<(string Token, DateTimeOffset? Expiry)> RunPluginAsync(ExecPlugin plugin, CancellationToken cancellationToken)
    {
        if (plugin.InteractiveMode == "Always")
        {
            throw new KubeCredentialException($"the credential plugin '{plugin.Command}' needs a terminal (interactiveMode: Always), and Capstan runs without one");
        }

        PluginRuns++;
        var start = new ProcessStartInfo(plugin.Command)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in plugin.Args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in plugin.Env)
        {
            start.Environment[name] = value;
        }

        var spec = new JsonObject { ["interactive"] = false };
        if (plugin.ProvideClusterInfo)
        {
            spec["cluster"] = new JsonObject { ["server"] = _connection.Server.ToString(), ["tls-server-name"] = _connection.TlsServerName };
        }

        start.Environment["KUBERNETES_EXEC_INFO"] = new JsonObject { ["apiVersion"] = plugin.ApiVersion, ["kind"] = "ExecCredential", ["spec"] = spec }.ToJsonString();
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new KubeCredentialException($"the credential plugin '{plugin.Command}' did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new KubeCredentialException(
                $"the credential plugin '{plugin.Command}' could not be run: {ex.Message}" + (plugin.InstallHint is { } hint ? $"\n{hint.Trim()}" : string.Empty), ex);
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Given up on (cancelled, or the request's time ran out): the plugin does not outlive the wait.
                process.Kill(entireProcessTree: true);
                throw;
            }

            var output = await stdout;
            var errors = (await stderr).Trim();
            if (process.ExitCode != 0)
            {
                throw new KubeCredentialException($"the credential plugin '{plugin.Command}' failed (exit code {process.ExitCode.ToString(CultureInfo.InvariantCulture)})" + (errors.Length > 0 ? $": {errors}" : string.Empty));
            }

            return Parse(plugin, output);
        }
    }

    private static (string Token, DateTimeOffset? Expiry) Parse(ExecPlugin plugin, string output)
    {
        JsonObject? credential;
        try
        {
            credential = JsonNode.Parse(output) as JsonObject;
        }
        catch (JsonException ex)
        {
            throw new KubeCredentialException($"the credential plugin '{plugin.Command}' printed something that is not an ExecCredential: {ex.Message}", ex);
        }

        if (credential?["kind"]?.GetValue<string>() != "ExecCredential" || credential["apiVersion"]?.GetValue<string>() != plugin.ApiVersion)
        {
            throw new KubeCredentialException($"the credential plugin '{plugin.Command}' printed no ExecCredential of {plugin.ApiVersion}");
        }

        var token = credential["status"]?["token"]?.GetValue<string>();
        if (string.IsNullOrEmpty(token))
        {
            throw new KubeCredentialException(
                credential["status"]?["clientCertificateData"] is not null
                    ? $"the credential plugin '{plugin.Command}' issues client certificates, which Capstan does not support yet; use a plugin that issues tokens"
                    : $"the credential plugin '{plugin.Command}' gave no token");
        }

        DateTimeOffset? expiry = null;
        if (credential["status"]?["expirationTimestamp"]?.GetValue<string>() is { } text)
        {
            expiry = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
                ? at
                : throw new KubeCredentialException($"the credential plugin '{plugin.Command}' gave an expirationTimestamp that is not a time: {text}");
        }

        return (token, expiry);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _refresh.Dispose();
        }

        base.Dispose(disposing);
    }
}
