using System.Diagnostics;
using Capstan.Core.Config;
using Capstan.Testing;

namespace Capstan.Images.Tests;

/// <summary>The real MediaWiki tree of Debian's mediawiki package: built, pushed, pulled, prepped, installed and served.</summary>
public sealed class MediaWikiTests(RegistryServer registry) : IClassFixture<RegistryServer>
{
    private const string Tree = "/usr/share/mediawiki";

    [Fact]
    public async Task The_debian_mediawiki_tree_survives_build_push_pull_and_prep_and_installs_and_serves_its_main_page()
    {
        Assert.True(Directory.Exists(Tree), $"{Tree} is missing: apt-get install mediawiki php-cli php-sqlite3 php-intl php-mbstring php-xml (.ci/run does)");
        var layout = new OciLayout(Tools.Temp("layout"));
        var built = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.39", Tree)]), "1.39", default);
        Assert.True(built.Flavours[0].Layers.Sum(l => l.Files) > 20_000);

        var registryUri = new Uri(registry.Address + "/");
        using (var target = new RegistryClient(registryUri, "mediawiki", null))
        {
            await new ImageCopier(layout, target).CopyAsync("1.39", "1.39", default);
        }

        var inspect = Tools.Run("skopeo", "inspect", "--tls-verify=false", $"docker://127.0.0.1:{registry.Port}/mediawiki:1.39");
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Contains(built.Top.Digest, inspect.Out, StringComparison.Ordinal);

        var pulled = new OciLayout(Tools.Temp("pulled"));
        using (var source = new RegistryClient(registryUri, "mediawiki", null))
        {
            await new ImageCopier(source, pulled).CopyAsync("1.39", "1.39", default);
        }

        var staging = Tools.Temp("staging");
        var prep = await new ImagePrep(pulled).PrepAsync("1.39", staging, null, default);
        Assert.Equal(built.Top.Digest, prep.Digest);
        var wiki = Path.Combine(staging, "srv", "mediawiki", "php-1.39");
        Assert.Equal(Tools.Sha256Tree(Tree), Tools.Sha256Tree(wiki));

        // Install on SQLite into directories outside the tree, then ask for the version.
        var data = Tools.Temp("data");
        var conf = Tools.Temp("conf");
        var port = EtcdServer.FreePort();
        var install = Tools.RunIn(wiki, null, "php", "maintenance/install.php", "--dbtype", "sqlite", "--dbpath", data, "--server", $"http://127.0.0.1:{port}", "--scriptpath", string.Empty,
            "--pass", "Capstan-Test-Passw0rd", "--confpath", conf, "TestWiki", "Admin");
        Assert.True(install.Code == 0, install.Out + install.Err);
        var settings = Path.Combine(conf, "LocalSettings.php");
        var version = Tools.RunIn(wiki, null, "php", "maintenance/version.php", "--conf", settings);
        Assert.True(version.Code == 0, version.Out + version.Err);
        Assert.StartsWith("MediaWiki version: 1.39", version.Out, StringComparison.Ordinal);

        // PHP's built-in server on loopback serves the Main Page.
        var psi = new ProcessStartInfo("php") { WorkingDirectory = wiki, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-S", $"127.0.0.1:{port}", "-t", wiki })
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["MW_CONFIG_FILE"] = settings;
        using var server = Process.Start(psi)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            string? page = null;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (page is null)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/index.php?title=Main_Page"));
                    Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
                    page = await response.Content.ReadAsStringAsync();
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100);
                }
            }

            Assert.Contains("MediaWiki has been installed", page, StringComparison.Ordinal);
            Assert.Contains("<title>TestWiki</title>", page, StringComparison.Ordinal);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }
}
