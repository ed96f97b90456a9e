using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary><c>capstan image …</c> and <c>deploy --build-image</c> end to end on a copy of the example farm.</summary>
public sealed class ImageCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Build_writes_a_report_and_reuses_unchanged_layers_and_the_image_can_be_inspected_and_prepped()
    {
        var tree = Tree();
        var layout = Path.Combine(_temp.Path, "layout");
        var build = CliRunner.Run("image", "build", "--repo", CliRunner.ExampleFarm, "--source", $"php-1.42={tree}", "--to", $"oci-layout://{layout}", "--tag", "one", "--epoch", "1700000000", "-o", "json");
        Assert.True(build.ExitCode == 0, build.Err);
        var report = JsonNode.Parse(build.Out)!;
        Assert.Equal(JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "report.json")))!.ToJsonString(), report.ToJsonString());
        Assert.Equal(["php-1.42"], report["versions"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.All(report["flavours"]![0]!["layers"]!.AsArray().Where(l => l!["files"]!.GetValue<int>() > 0), l => Assert.False(l!["reused"]!.GetValue<bool>()));

        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        var again = CliRunner.Run("image", "build", "--repo", CliRunner.ExampleFarm, "--source", $"php-1.42={tree}", "--to", $"oci-layout://{layout}", "--tag", "two", "--epoch", "1700000000");
        Assert.True(again.ExitCode == 0, again.Err);
        Assert.Contains("1 layers compressed", again.Out, StringComparison.Ordinal);
        Assert.Matches(@"php-1\.42/includes\s+\d+\s+\d+\s+\S+ \S+\s+\S+ \S+\s+sha256:\w+\s+no", again.Out);

        var inspect = CliRunner.Run("image", "inspect", $"oci-layout://{layout}:two", "-o", "json");
        Assert.True(inspect.ExitCode == 0, inspect.Err);
        Assert.Equal("php-1.42", JsonNode.Parse(inspect.Out)!["manifests"]![0]!["labels"]!["capstan.dev/versions"]!.GetValue<string>());

        var into = Path.Combine(_temp.Path, "staging");
        var prep = CliRunner.Run("image", "prep", $"oci-layout://{layout}:two", "--into", into, "-o", "json");
        Assert.True(prep.ExitCode == 0, prep.Err);
        Assert.Equal("<?php // changed", File.ReadAllText(Path.Combine(into, "srv", "mediawiki", "php-1.42", "includes", "Setup.php")));
        var plan = CliRunner.Run("image", "plan", "--repo", CliRunner.ExampleFarm);
        Assert.Contains("includes         includes/", plan.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Pull_cost_counts_the_nodes_running_mediawiki_and_the_bytes_they_lack()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var deployed = CliRunner.Run("deploy", "--repo", repo, "--yes", "--dc", "eqiad", "--namespace", "mw-debug");
        Assert.True(deployed.ExitCode == 0, deployed.Err);
        var tree = Tree();
        var layout = Path.Combine(_temp.Path, "layout");
        Assert.Equal(0, CliRunner.Run("image", "build", "--repo", repo, "--source", $"php-1.42={tree}", "--to", $"oci-layout://{layout}", "--tag", "old").ExitCode);
        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // changed");
        var built = CliRunner.Run("image", "build", "--repo", repo, "--source", $"php-1.42={tree}", "--to", $"oci-layout://{layout}", "--tag", "new", "-o", "json");
        var changed = JsonNode.Parse(built.Out)!["flavours"]![0]!["layers"]!.AsArray().Where(l => !l!["reused"]!.GetValue<bool>()).Sum(l => l!["size"]!.GetValue<long>());

        var cost = CliRunner.Run("image", "pull-cost", $"oci-layout://{layout}:old", $"oci-layout://{layout}:new", "--repo", repo, "--registry-bandwidth", "1MB/s", "-o", "json");
        Assert.True(cost.ExitCode == 0, cost.Err);
        var eqiad = JsonNode.Parse(cost.Out)!.AsArray().Single(e => e!["datacenter"]!.GetValue<string>() == "eqiad")!;
        Assert.Equal(1, eqiad["nodes"]!.GetValue<int>()); // the embedded cluster's one node runs mw-debug's pods
        Assert.Equal(changed, eqiad["bytesPerNode"]!.GetValue<long>());
        Assert.Equal(0, JsonNode.Parse(cost.Out)!.AsArray().Single(e => e!["datacenter"]!.GetValue<string>() == "codfw")!["nodes"]!.GetValue<int>());

        var bad = CliRunner.Run("image", "pull-cost", $"oci-layout://{layout}:old", $"oci-layout://{layout}:new", "--repo", repo, "--node-bandwidth", "fast");
        Assert.Equal(2, bad.ExitCode);
        Assert.Equal("capstan: error: --node-bandwidth 'fast' is not a rate (such as 125MB/s, 1Gbit/s or 10Gbps)\n", bad.Err);
    }

    [Fact]
    public void Bad_image_input_gets_one_line_and_a_meaningful_exit_code()
    {
        var missing = CliRunner.Run("image", "prep", $"oci-layout://{Path.Combine(_temp.Path, "empty")}:nope", "--into", Path.Combine(_temp.Path, "x"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("has no image nope", missing.Err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "empty")), "reading a layout that is not there must not create it");
        var push = CliRunner.Run("image", "push", $"oci-layout://{Path.Combine(_temp.Path, "empty")}:nope", $"oci-layout://{Path.Combine(_temp.Path, "target")}:nope");
        Assert.Equal(2, push.ExitCode);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "target")), "a failed push must not create its target");
        var noTree = CliRunner.Run("image", "build", "--repo", CliRunner.ExampleFarm, "--source", "php-1.42=/nonexistent", "--to", $"oci-layout://{Path.Combine(_temp.Path, "l")}");
        Assert.Equal(2, noTree.ExitCode);
        Assert.Equal("capstan: error: code tree '/nonexistent' (php-1.42) does not exist\n", noTree.Err);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "l")));
        var bare = CliRunner.CopyFarm(Path.Combine(_temp.Path, "bare"));
        var yaml = File.ReadAllText(Path.Combine(bare, "capstan.yaml"));
        File.WriteAllText(Path.Combine(bare, "capstan.yaml"), yaml.Replace("  sources:\n    php-1.44: code/php-1.44\n    php-1.45: code/php-1.45\n", string.Empty, StringComparison.Ordinal));
        var noSource = CliRunner.Run("image", "build", "--repo", bare, "--to", $"oci-layout://{Path.Combine(_temp.Path, "l")}");
        Assert.Equal(2, noSource.ExitCode);
        Assert.Contains("--source VERSION=DIR", noSource.Err, StringComparison.Ordinal);
        var badTag = CliRunner.Run("image", "inspect", "oci-layout:///tmp/x:-bad");
        Assert.Equal(2, badTag.ExitCode);
        Assert.Contains("not a valid tag", badTag.Err, StringComparison.Ordinal);
        var plainHttp = CliRunner.Run("image", "inspect", "http://registry.example/mediawiki:1");
        Assert.Equal(2, plainHttp.ExitCode);
        Assert.Contains("plain http is only allowed to a loopback registry", plainHttp.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Deploy_build_image_of_the_shipped_example_rolls_it_out_by_digest_and_an_unchanged_image_is_no_change()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "test"];
        Assert.Equal(0, CliRunner.Run([.. deploy, "--include-needs"]).ExitCode);

        var build = CliRunner.Run([.. deploy, "--build-image"]);
        Assert.True(build.ExitCode == 0, build.Err + build.Out);
        var valuesFile = Path.Combine(repo, "deploy", "images", "default.yaml");
        var values = File.ReadAllText(valuesFile);
        var reference = System.Text.RegularExpressions.Regex.Match(values, "capstan\\.local/mediawiki:[0-9-]+@sha256:[0-9a-f]{64}").Value;
        Assert.NotEmpty(reference);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug");
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(status.Out, @"pinkunicorn\s+2\s+Synced\s+Healthy\s+2/2"), status.Out);
        Assert.Contains(reference, status.Out, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(repo, ".capstan", "images", "report.json")));

        // The same code builds the same digest: the images file stays as it is, and neither run changes anything.
        foreach (var run in new[] { new[] { "--build-image", "--dry-run" }, ["--build-image"] })
        {
            var again = CliRunner.Run([.. deploy, .. run]);
            Assert.True(again.ExitCode == 0, again.Err + again.Out);
            Assert.Contains("capstan: image: unchanged: deploy/images/default.yaml already names " + reference, again.Err, StringComparison.Ordinal);
            Assert.Contains("nothing to do", again.Err, StringComparison.Ordinal);
            Assert.Equal(values, File.ReadAllText(valuesFile));
        }

        // Changed code: the dry run plans what the real run then does, and writes nothing.
        File.AppendAllText(Path.Combine(repo, "code", "php-1.44", "includes", "Setup.php"), "// changed\n");
        var dryRun = CliRunner.Run([.. deploy, "--build-image", "--dry-run", "-o", "json"]);
        Assert.True(dryRun.ExitCode == 0, dryRun.Err);
        Assert.Equal(values, File.ReadAllText(valuesFile));
        var planned = JsonNode.Parse(dryRun.Out.Split('\n')[0])!["releases"]!.AsArray().Where(r => r!["change"]!.GetValue<string>() != "noop").Select(r => r!["release"]!.GetValue<string>()).ToList();
        Assert.Equal(["eqiad/mw-debug/pinkunicorn"], planned);

        // The dry run also says what the new image costs: the embedded cluster's one node lacks the new layers only.
        var newDigest = System.Text.RegularExpressions.Regex.Match(dryRun.Err, "capstan\\.local/mediawiki:[0-9-]+@(sha256:[0-9a-f]{64}) \\(dry run").Groups[1].Value;
        long[] Layers(string digest, out string[] digests)
        {
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(repo, ".capstan", "images", "blobs", "sha256", digest["sha256:".Length..])))!;
            digests = [.. manifest["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>())];
            return [.. manifest["layers"]!.AsArray().Select(l => l!["size"]!.GetValue<long>())];
        }

        var oldSizes = Layers(reference[(reference.IndexOf('@', StringComparison.Ordinal) + 1)..], out var oldDigests);
        var newSizes = Layers(newDigest, out var newDigests);
        var lacked = newDigests.Select((d, i) => oldDigests.Contains(d) ? 0 : newSizes[i]).Sum();
        Assert.InRange(lacked, 1, oldSizes.Sum() - 1);
        var cost = JsonNode.Parse(dryRun.Out.Split('\n')[0])!["pullCost"]!.AsArray().Single()!;
        Assert.Equal("eqiad/mw-debug/pinkunicorn", cost["release"]!.GetValue<string>());
        Assert.Equal(1, cost["nodes"]!.GetValue<int>());
        Assert.Equal(lacked, cost["bytesPerNode"]!.GetValue<long>());
        Assert.Equal(lacked, cost["registryEgressBytes"]!.GetValue<long>());
        var text = CliRunner.Run([.. deploy, "--build-image", "--dry-run"]);
        Assert.Contains("image pull cost (the new images' layers each node lacks):", text.Out, StringComparison.Ordinal);
        Assert.Matches("eqiad +mw-debug/pinkunicorn +1 +", text.Out);

        // Careless pre-pull options change nothing.
        foreach (var (args, message) in new[]
        {
            (new[] { "--pre-pull", "--no-pre-pull" }, "capstan: error: --no-pre-pull contradicts --pre-pull: give one\n"),
            (["--no-pre-pull", "--pre-pull-egress", "1Gbit/s"], "capstan: error: --no-pre-pull contradicts --pre-pull-egress: give one\n"),
            (["--pre-pull-egress", "lots"], "capstan: error: --pre-pull-egress 'lots' is not a rate (such as 125MB/s, 1Gbit/s or 10Gbps)\n"),
        })
        {
            var refused = CliRunner.Run([.. deploy, .. args]);
            Assert.Equal((2, message), (refused.ExitCode, refused.Err));
        }

        // The real run, with the nodes warmed first.
        var real = CliRunner.Run([.. deploy, "--build-image", "--pre-pull", "-o", "json"]);
        Assert.True(real.ExitCode == 0, real.Err);
        Assert.Contains("\"message\":\"pre-pull eqiad: 1 nodes warmed in ", real.Out, StringComparison.Ordinal);
        var done = JsonNode.Parse(real.Out.Split('\n')[0])!["releases"]!.AsArray().Where(r => r!["change"]!.GetValue<string>() != "noop").Select(r => r!["release"]!.GetValue<string>()).ToList();
        Assert.Equal(planned, done);
        Assert.NotEqual(values, File.ReadAllText(valuesFile));
    }

    private string Tree()
    {
        var tree = Path.Combine(_temp.Path, "php-1.42-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (var (path, text) in new[] { ("index.php", "<?php"), ("includes/Setup.php", "<?php // setup"), ("vendor/autoload.php", "<?php"), ("languages/i18n/en.json", "{}") })
        {
            var full = Path.Combine(tree, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }

        return tree;
    }
}

/// <summary><c>deploy --build-image</c> with a real registry as the farm's <c>registry:</c>.</summary>
public sealed class BuildImageToRegistryTests(Capstan.Testing.RegistryServer registry) : IClassFixture<Capstan.Testing.RegistryServer>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void The_image_is_pushed_and_pods_refer_to_it_by_registry_and_digest()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var tree = Path.Combine(_temp.Path, "php-1.42");
        Directory.CreateDirectory(Path.Combine(tree, "includes"));
        File.WriteAllText(Path.Combine(tree, "includes", "Setup.php"), "<?php // " + Guid.NewGuid());
        var yaml = File.ReadAllText(Path.Combine(repo, "capstan.yaml")).Replace("registry: oci-layout://.capstan/images", $"registry: {registry.Address}/wikifarm", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(repo, "capstan.yaml"), yaml.Replace("php-1.44: code/php-1.44", $"php-1.42: {tree}", StringComparison.Ordinal));

        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--include-needs", "--yes").ExitCode);
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--build-image", "--yes");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        Assert.Contains($"pushed to http://127.0.0.1:{registry.Port}/wikifarm/mediawiki:", deploy.Err, StringComparison.Ordinal);
        // Pushed by Capstan: the local cluster, made before the image existed, may pull it (its pods started above).
        Assert.Contains($"capstan: local://eqiad can pull 127.0.0.1:{registry.Port}/wikifarm/mediawiki:", deploy.Err, StringComparison.Ordinal);

        var values = File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml"));
        var reference = System.Text.RegularExpressions.Regex.Match(values, $"127\\.0\\.0\\.1:{registry.Port}/wikifarm/mediawiki:([0-9-]+)@(sha256:[0-9a-f]{{64}})");
        Assert.True(reference.Success, values);
        var inspect = CliRunner.Run("image", "inspect", $"http://127.0.0.1:{registry.Port}/wikifarm/mediawiki:{reference.Groups[1].Value}", "-o", "json");
        Assert.True(inspect.ExitCode == 0, inspect.Err);
        Assert.Equal(reference.Groups[2].Value, JsonNode.Parse(inspect.Out)!["digest"]!.GetValue<string>());
        Assert.Contains(reference.Value, CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug").Out, StringComparison.Ordinal);
    }
}
