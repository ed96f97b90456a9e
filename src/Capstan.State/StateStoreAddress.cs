using Capstan.Core.Diagnostics;
using Capstan.State.Etcd;
using Capstan.State.Files;

namespace Capstan.State;

/// <summary>
/// Opens a state store from its address: <c>etcd://host:port[,host:port…][?prefix=/capstan]</c> (plain HTTP, for
/// loopback and trusted networks), <c>etcds://…</c> (HTTPS, verified), or <c>file://PATH</c> (relative to the repo).
/// etcd options: <c>prefix=/path</c>, <c>cacert=PEM</c> (the members' CA), <c>cert=PEM&amp;key=PEM</c> (a client
/// certificate), <c>user=NAME</c> (its password from <c>CAPSTAN_ETCD_PASSWORD</c> or <c>password-file=PATH</c>; never
/// in the address, which is shown in messages).
/// </summary>
public static class StateStoreAddress
{
    /// <summary>The default key prefix in etcd.</summary>
    public const string DefaultPrefix = "/capstan";

    /// <summary>Opens the store; throws <see cref="UserInputException"/> for an address it cannot use.</summary>
    public static IStateStore Open(string address, string repoRoot, TimeProvider? time = null, EtcdOptions? etcdOptions = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        // Messages show the address without its options: nothing there is meant to be printed (a password never is).
        var shown = address.Contains('?', StringComparison.Ordinal) ? address[..address.IndexOf('?', StringComparison.Ordinal)] + "?…" : address;
        if (address.StartsWith("file://", StringComparison.Ordinal))
        {
            var path = address["file://".Length..];
            if (path.Length == 0)
            {
                throw new UserInputException($"state store address '{address}' names no directory");
            }

            return new FileStateStore(Path.IsPathRooted(path) ? path : Path.Combine(repoRoot, path), time);
        }

        var secure = address.StartsWith("etcds://", StringComparison.Ordinal);
        if (!secure && !address.StartsWith("etcd://", StringComparison.Ordinal))
        {
            throw new UserInputException($"state store address '{shown}' is not supported (use etcd://host:port[,host:port][?prefix=/capstan], etcds://… or file://PATH)");
        }

        var rest = address[(secure ? "etcds://" : "etcd://").Length..];
        var prefix = DefaultPrefix;
        var options = etcdOptions ?? new EtcdOptions();
        string? passwordFile = null;
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            foreach (var pair in rest[(query + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var (name, value) = eq < 0 ? (pair, string.Empty) : (pair[..eq], Uri.UnescapeDataString(pair[(eq + 1)..]));
                string FilePath() => value.Length > 0 ? (Path.IsPathRooted(value) ? value : Path.Combine(repoRoot, value))
                    : throw new UserInputException($"state store address '{shown}': {name}= needs a file");
                switch (name)
                {
                    case "prefix":
                        prefix = value.StartsWith('/') ? value : throw new UserInputException($"state store address '{shown}': prefix= must start with / (prefix=/capstan)");
                        break;
                    case "cacert":
                        options = options with { CaFile = FilePath() };
                        break;
                    case "cert":
                        options = options with { CertFile = FilePath() };
                        break;
                    case "key":
                        options = options with { KeyFile = FilePath() };
                        break;
                    case "user" when value.Length > 0:
                        options = options with { Username = value };
                        break;
                    case "password-file":
                        passwordFile = FilePath();
                        break;
                    case "password":
                        throw new UserInputException($"state store address '{shown}': a password does not go in the address (it is shown in messages); set CAPSTAN_ETCD_PASSWORD or password-file=PATH");
                    default:
                        throw new UserInputException($"state store address '{shown}': unknown option '{name}' (options: prefix=/path, cacert=, cert=, key=, user=, password-file=)");
                }
            }

            rest = rest[..query];
        }

        if (options.Username is not null)
        {
            var password = passwordFile is not null
                ? (File.Exists(passwordFile) ? File.ReadAllText(passwordFile).TrimEnd('\r', '\n') : throw new UserInputException($"state store address: password-file {passwordFile} does not exist"))
                : environment("CAPSTAN_ETCD_PASSWORD") ?? throw new UserInputException($"etcd user '{options.Username}' needs a password: set CAPSTAN_ETCD_PASSWORD or add password-file=PATH to the state address");
            options = options with { Password = password };
        }
        else if (passwordFile is not null)
        {
            throw new UserInputException($"state store address '{shown}': password-file= needs user=NAME");
        }

        if (!secure && options.Username is not null && !Loopback(rest))
        {
            throw new UserInputException($"state store address '{shown}': user= sends a password, which needs etcds:// (TLS) unless etcd is on this machine");
        }

        static bool Loopback(string hosts) => hosts.Split(',', StringSplitOptions.RemoveEmptyEntries)
            .All(h => h.StartsWith("127.", StringComparison.Ordinal) || h.StartsWith("localhost", StringComparison.Ordinal) || h.StartsWith("[::1]", StringComparison.Ordinal));

        if (!secure && (options.CaFile ?? options.CertFile) is not null)
        {
            throw new UserInputException($"state store address '{shown}': cacert=, cert= and key= need etcds:// (TLS)");
        }

        var endpoints = new List<Uri>();
        foreach (var hostPort in rest.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Uri.TryCreate((secure ? "https://" : "http://") + hostPort, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || hostPort.Contains('@', StringComparison.Ordinal))
            {
                throw new UserInputException($"state store address '{shown}': '{hostPort}' is not host:port");
            }

            endpoints.Add(uri);
        }

        if (endpoints.Count == 0)
        {
            throw new UserInputException($"state store address '{shown}' names no etcd endpoint");
        }

        return new EtcdStateStore(endpoints, prefix, options);
    }
}
