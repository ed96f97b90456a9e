using Capstan.Core.Rendering;

namespace Capstan.Deploy.Tests;

/// <summary>A datacenter whose embedded cluster has a name of its own (<c>local://east</c> for eqiad).</summary>
public sealed class ClusterNamingTests
{
    [Fact]
    public async Task A_local_cluster_named_unlike_its_datacenter_keeps_its_own_directory_and_is_found_by_the_datacenter()
    {
        await using var farm = await FarmHarness.StartAsync(edit: root =>
        {
            var config = Path.Combine(root, "capstan.yaml");
            File.WriteAllText(config, File.ReadAllText(config).Replace("cluster: local://eqiad", "cluster: local://east", StringComparison.Ordinal));
        });

        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"), includeNeeds: true);

        Assert.True(result!.Succeeded, result.Cause);
        var server = farm.Clusters.LocalServer("eqiad");
        Assert.NotNull(server);
        Assert.Null(farm.Clusters.LocalServer("east"));
        Assert.True(Directory.Exists(Path.Combine(farm.Root, ".capstan", "clusters", "east")));
        Assert.False(Directory.Exists(Path.Combine(farm.Root, ".capstan", "clusters", "eqiad")));
        Assert.NotEmpty((await farm.Clusters["eqiad"].ListAsync("apps/v1", "Deployment", "mw-debug", null, default)).Items);
        Assert.Same(server, farm.Clusters.LocalServer("eqiad"));
    }
}
