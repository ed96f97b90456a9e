using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Kubernetes;
using Capstan.LocalCluster;

namespace Capstan.Clusters;

/// <summary>The clusters of a command: one client per datacenter, and any local cluster this process hosts.</summary>
public sealed class ClusterSet : IClusters, IAsyncDisposable
{
    private readonly List<LocalClusterHost> _hosts = [];
    private readonly Dictionary<string, LocalClusterHost> _localByDatacenter = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IClusterClient> _clients = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public IClusterClient this[string dc] => _clients[dc];

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Datacenters => _clients.Keys;

    /// <summary>
    /// Connects to the datacenters' clusters: <c>local://NAME</c> is the embedded cluster of the repo (the running
    /// <c>capstan local serve</c>, else hosted here), <c>kube://CONTEXT</c> a kubeconfig context.
    /// </summary>
    public static async Task<ClusterSet> ConnectAsync(
        FarmModel model, IEnumerable<string> datacenters, Func<string, string?> environment, LocalClusterOptions localOptions, CancellationToken cancellationToken)
    {
        var set = new ClusterSet();
        localOptions = localOptions with { ImageLayout = localOptions.ImageLayout ?? model.RegistryLayout };

        try
        {
            foreach (var dc in datacenters)
            {
                var cluster = model.Datacenters.First(d => d.Name == dc).Cluster;
                if (cluster.StartsWith("local://", StringComparison.Ordinal))
                {
                    var name = cluster["local://".Length..];
                    var host = await LocalClusterHost.OpenAsync(LocalClusterHost.DirectoryFor(model.RepoRoot, name), localOptions, requireOwnServer: false, cancellationToken);
                    set._hosts.Add(host);
                    set._localByDatacenter[dc] = host;
                    var connection = new ClusterConnection(host.Url, System.Text.Encoding.UTF8.GetBytes(host.CertificateAuthorityPem), Token: host.Token);
                    set._clients[dc] = host.Server is not null
                        ? new KubeClient(connection)
                        : new ReconnectingClusterClient(connection, () => LocalClusterHost.RunningServer(host.Directory) is { } served
                            ? new ClusterConnection(served.Url, System.Text.Encoding.UTF8.GetBytes(served.Authority), Token: served.Token)
                            : null);
                }
                else if (cluster.StartsWith("kube://", StringComparison.Ordinal))
                {
                    var context = cluster["kube://".Length..];
                    try
                    {
                        set._clients[dc] = new KubeClient(KubeConfig.Load(environment).Resolve(context.Length == 0 ? null : context));
                    }
                    catch (KubeConfigException ex)
                    {
                        throw new UserInputException($"datacenter {dc} ({cluster}): {ex.Message}");
                    }
                }
                else
                {
                    throw new UserInputException($"datacenter {dc}: cluster '{cluster}' is not supported (use local://NAME or kube://CONTEXT)");
                }
            }

            return set;
        }
        catch
        {
            await set.DisposeAsync();
            throw;
        }
    }

    /// <summary>The local cluster server hosted here for a datacenter, if any (tests inject faults through it).</summary>
    public LocalClusterServer? LocalServer(string dc) => _localByDatacenter.GetValueOrDefault(dc)?.Server;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values)
        {
            await client.DisposeAsync();
        }

        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }
    }
}
