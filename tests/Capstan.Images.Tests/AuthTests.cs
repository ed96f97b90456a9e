using Capstan.Core.Config;
using Capstan.Testing;

namespace Capstan.Images.Tests;

/// <summary>A registry behind Basic auth (htpasswd).</summary>
public sealed class AuthTests(AuthRegistryServer registry) : IClassFixture<AuthRegistryServer>
{
    [Fact]
    public async Task Basic_credentials_are_sent_when_the_registry_asks_and_missing_or_wrong_ones_are_a_clear_error()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var layout = new OciLayout(Tools.Temp("layout"));
        await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "v1", default);
        var uri = new Uri(registry.Address + "/");

        using (var anonymous = new RegistryClient(uri, "mediawiki", null))
        {
            var ex = await Assert.ThrowsAsync<ImageException>(() => new ImageCopier(layout, anonymous).CopyAsync("v1", "v1", default));
            Assert.Contains("needs credentials: set CAPSTAN_REGISTRY_USERNAME and CAPSTAN_REGISTRY_PASSWORD", ex.Message, StringComparison.Ordinal);
        }

        using (var wrong = new RegistryClient(uri, "mediawiki", new RegistryCredentials(AuthRegistryServer.User, "nope")))
        {
            var ex = await Assert.ThrowsAsync<ImageException>(() => new ImageCopier(layout, wrong).CopyAsync("v1", "v1", default));
            Assert.Contains("401", ex.Message, StringComparison.Ordinal);
        }

        var credentials = RegistryCredentials.Find(uri.Authority, name => name switch
        {
            "CAPSTAN_REGISTRY_USERNAME" => AuthRegistryServer.User,
            "CAPSTAN_REGISTRY_PASSWORD" => AuthRegistryServer.Password,
            _ => null,
        });
        using (var client = new RegistryClient(uri, "mediawiki", credentials))
        {
            await new ImageCopier(layout, client).CopyAsync("v1", "v1", default);
            Assert.True(client.BytesUploaded > 0);
        }

        // The same credentials from a docker config file, for the pull.
        var dockerConfig = Tools.Temp("docker");
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{AuthRegistryServer.User}:{AuthRegistryServer.Password}"));
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["auths"] = new System.Text.Json.Nodes.JsonObject { [uri.Authority] = new System.Text.Json.Nodes.JsonObject { ["auth"] = auth } },
        };
        await File.WriteAllTextAsync(Path.Combine(dockerConfig, "config.json"), config.ToJsonString());
        var fromFile = RegistryCredentials.Find(uri.Authority, name => name == "DOCKER_CONFIG" ? dockerConfig : null);
        var pulled = new OciLayout(Tools.Temp("pulled"));
        using (var source = new RegistryClient(uri, "mediawiki", fromFile))
        {
            await new ImageCopier(source, pulled).CopyAsync("v1", "v1", default);
        }

        Assert.Equal(layout.Resolve("v1")!.Digest, pulled.Resolve("v1")!.Digest);
    }
}
