using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;

namespace Capstan.Core.Tests;

/// <summary>Production's rendering turned into an environment's.</summary>
public sealed class EnvironmentRenderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("capstan-env-render-").FullName;

    public EnvironmentRenderTests()
    {
        foreach (var file in Directory.EnumerateFiles(RepoPaths.ExampleFarm, "*", SearchOption.AllDirectories).Where(f => !f.Contains("/.capstan/", StringComparison.Ordinal)))
        {
            var target = Path.Combine(_root, Path.GetRelativePath(RepoPaths.ExampleFarm, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        Write("environments/alice-test.yaml", "php:\n  workers: 2\n");
        // The environment's own secrets: every value its own.
        Write("environments/alice-test.secrets.yaml", File.ReadAllText(Path.Combine(_root, "private/secrets.yaml"))
            .Replace("BEGIN PRIVATE KEY-----\n      M", "BEGIN PRIVATE KEY-----\n      X", StringComparison.Ordinal)
            .Replace("BEGIN CERTIFICATE-----\n      M", "BEGIN CERTIFICATE-----\n      X", StringComparison.Ordinal)
            .Replace("example-not-a-real-password", "alice-test-password", StringComparison.Ordinal)
            .Replace("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", StringComparison.Ordinal)
            .Replace("// Example credentials for the example farm.", "// alice-test's credentials.", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(_root, path))!);
        File.WriteAllText(Path.Combine(_root, path), text);
    }

    private (RenderResult Production, RenderResult Environment) Render(EnvironmentOverlay overlay)
    {
        var files = new DirectoryRepoFiles(_root);
        var model = RepoLoader.Load(files).Model;
        var selection = new RenderSelection("eqiad", "mw-web");
        return (new FarmRenderer(model, files).Render(selection, FarmFixture.State()), new FarmRenderer(model, files, overlay).Render(selection, FarmFixture.State()));
    }

    private static EnvironmentOverlay Overlay(string? image = null) =>
        new("alice-test", ["environments/alice-test.yaml"], ["environments/alice-test.secrets.yaml"], Image: image);

    [Fact]
    public void Every_object_moves_into_the_environments_namespace_at_one_replica_without_canaries()
    {
        var (production, environment) = Render(Overlay());
        Assert.Contains(production.Releases, r => r.Release == "canary");
        Assert.DoesNotContain(environment.Releases, r => r.Release == "canary");
        Assert.All(environment.Releases.SelectMany(r => r.Objects), o =>
        {
            Assert.Equal("alice-test--mw-web", o.Metadata.Namespace);
            Assert.Equal("alice-test", o.Metadata.Labels![EnvironmentOverlay.Label]);
        });
        Assert.All(environment.Releases.SelectMany(r => r.Objects).OfType<Deployment>(), d => Assert.Equal(1, d.Spec.Replicas));
        Assert.Equal("alice-test--mw-web", Assert.Single(environment.Namespaces).Namespace.Metadata.Name);
        Assert.True(production.Releases.SelectMany(r => r.Objects).OfType<Deployment>().Single(d => d.Metadata.Name.EndsWith(".main", StringComparison.Ordinal)).Spec.Replicas > 1);
    }

    [Fact]
    public void The_environment_layer_comes_after_the_release_layer_and_its_image_wins_over_every_layer()
    {
        var (production, environment) = Render(Overlay(image: "registry.example/mediawiki:alice-1"));
        string Env(RenderResult result, string name) => result.Releases.Single(r => r.Release == "main").Objects.OfType<Deployment>().Single()
            .Spec.Template.Spec.Containers.First(c => c.Name == "mediawiki-main-app").Env!.Single(e => e.Name == name).Value!;
        Assert.Equal("12", Env(production, "FPM__pm__max_children"));
        Assert.Equal("2", Env(environment, "FPM__pm__max_children"));
        var images = environment.Releases.Single(r => r.Release == "main").Objects.OfType<Deployment>().Single().Spec.Template.Spec.Containers.Select(c => c.Image);
        Assert.Contains("registry.example/mediawiki:alice-1", images);
    }

    [Fact]
    public void No_production_secret_value_appears_in_any_environment_object()
    {
        var (production, environment) = Render(Overlay());
        var secretValues = production.Releases.SelectMany(r => r.Objects).OfType<Secret>()
            .SelectMany(s => s.Data.Values)
            .Where(v => v.Length >= 16)
            .ToList();
        Assert.NotEmpty(secretValues);
        var environmentText = string.Join("\n", environment.Releases.SelectMany(r => r.Objects).Select(o => KubeSerializer.ToNode(o).ToJsonString()));
        Assert.All(secretValues, v => Assert.DoesNotContain(v, environmentText, StringComparison.Ordinal));
    }

    [Fact]
    public void Production_secrets_are_never_read_even_for_keys_the_environment_does_not_set()
    {
        // The environment's secrets file lacks the private settings: production's are not used in their place.
        var own = File.ReadAllText(Path.Combine(_root, "environments/alice-test.secrets.yaml"));
        Write("environments/alice-test.secrets.yaml", own[..own.IndexOf("  private:", StringComparison.Ordinal)]);
        var (production, environment) = Render(Overlay());
        var privateSettings = production.Releases.SelectMany(r => r.Objects).OfType<Secret>().SelectMany(s => s.Data.Values).Where(v => v.StartsWith("PD9waHA", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(privateSettings);
        var environmentText = string.Join("\n", environment.Releases.SelectMany(r => r.Objects).Select(o => KubeSerializer.ToNode(o).ToJsonString()));
        Assert.All(privateSettings, v => Assert.DoesNotContain(v, environmentText, StringComparison.Ordinal));
    }

    [Fact]
    public void A_broken_environment_values_file_is_reported_with_file_and_line()
    {
        Write("environments/alice-test.yaml", "php:\n  workers: many\n");
        var error = Assert.Throws<RepoValidationException>(() => Render(Overlay()));
        Assert.Contains(error.Diagnostics, d => d.ToString().StartsWith("environments/alice-test.yaml:2:", StringComparison.Ordinal) && d.Message.Contains("php.workers", StringComparison.Ordinal));
    }

    [Fact]
    public void A_cluster_scoped_object_is_refused_in_an_environment()
    {
        Write("manifests/limits/reader.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n");
        var files = new DirectoryRepoFiles(_root);
        var model = RepoLoader.Load(files).Model;
        var error = Assert.Throws<UserInputException>(() => new FarmRenderer(model, files, Overlay()).Render(new RenderSelection("eqiad", "mw-debug", "limits"), FarmFixture.State()));
        Assert.Equal("environment alice-test: mw-debug/limits renders ClusterRole reader, which lives outside any namespace; an environment holds only objects in its own namespaces", error.Message);
    }
}
