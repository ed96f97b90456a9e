using Capstan.Core.Diagnostics;
using Capstan.State.Etcd;
using Capstan.State.Files;

namespace Capstan.State;

/// <summary>
/// Opens a state store from its address: <c>etcd://host:port[,host:port…][?prefix=/capstan]</c> (plain HTTP, for
/// loopback and trusted networks), <c>etcds://…</c> (HTTPS, verified), or <c>file://PATH</c> (relative to the repo).
/// </summary>
public static class StateStoreAddress
{
    /// <summary>The default key prefix in etcd.</summary>
    public const string DefaultPrefix = "/capstan";

    /// <summary>Opens the store; throws <see cref="UserInputException"/> for an address it cannot use.</summary>
    public static IStateStore Open(string address, string repoRoot, TimeProvider? time = null, EtcdOptions? etcdOptions = null)
    {
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
            throw new UserInputException($"state store address '{address}' is not supported (use etcd://host:port[,host:port][?prefix=/capstan], etcds://… or file://PATH)");
        }

        var rest = address[(secure ? "etcds://" : "etcd://").Length..];
        var prefix = DefaultPrefix;
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            foreach (var pair in rest[(query + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var (name, value) = eq < 0 ? (pair, string.Empty) : (pair[..eq], Uri.UnescapeDataString(pair[(eq + 1)..]));
                if (name != "prefix" || !value.StartsWith('/'))
                {
                    throw new UserInputException($"state store address '{address}': the only option is prefix=/path");
                }

                prefix = value;
            }

            rest = rest[..query];
        }

        var endpoints = new List<Uri>();
        foreach (var hostPort in rest.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Uri.TryCreate((secure ? "https://" : "http://") + hostPort, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || hostPort.Contains('@', StringComparison.Ordinal))
            {
                throw new UserInputException($"state store address '{address}': '{hostPort}' is not host:port");
            }

            endpoints.Add(uri);
        }

        if (endpoints.Count == 0)
        {
            throw new UserInputException($"state store address '{address}' names no etcd endpoint");
        }

        return new EtcdStateStore(endpoints, prefix, etcdOptions);
    }
}
