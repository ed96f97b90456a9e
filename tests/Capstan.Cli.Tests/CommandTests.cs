using System.Text.Json;

namespace Capstan.Cli.Tests;

public sealed class CommandTests
{
    [Fact]
    public void Render_of_one_release_prints_its_objects()
    {
        var result = CliRunner.Run("render", "--repo", "examples/wikifarm", "--dc", "eqiad", "--namespace", "mw-web", "--release", "canary");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("name: mw-web.eqiad.canary", result.Out, StringComparison.Ordinal);
        Assert.Contains("routed_via: main", result.Out, StringComparison.Ordinal);
        Assert.Contains("type: Recreate", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("kind: Service", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("mw-web.eqiad.main", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("example-not-a-real-password", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_as_json_is_a_kubernetes_list()
    {
        var result = CliRunner.Run("render", "--repo", "examples/wikifarm", "--dc", "codfw", "--namespace", "mw-api-int", "-o", "json");
        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Out);
        Assert.Equal("List", doc.RootElement.GetProperty("kind").GetString());
        var kinds = doc.RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("kind").GetString()).ToList();
        Assert.Contains("Deployment", kinds);
        Assert.Contains("Namespace", kinds);
    }

    [Fact]
    public void Repo_can_come_from_the_environment()
    {
        var result = CliRunner.Run(new Dictionary<string, string> { ["CAPSTAN_REPO"] = "examples/wikifarm" }, "releases", "--dc", "eqiad", "-n", "mw-debug");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("pinkunicorn", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Releases_table_lists_stage_needs_replicas_and_image()
    {
        var result = CliRunner.Run("releases", "--repo", "examples/wikifarm", "--dc", "eqiad", "-n", "mw-web");
        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.TrimEnd('\n').Split('\n');
        Assert.StartsWith("DC", lines[0], StringComparison.Ordinal);
        var canary = lines.Single(l => l.Contains(" canary ", StringComparison.Ordinal));
        Assert.Contains("canaries", canary, StringComparison.Ordinal);
        Assert.Contains(" 11 ", canary, StringComparison.Ordinal);
        Assert.Contains("prometheus", canary, StringComparison.Ordinal);
    }

    [Fact]
    public void Releases_as_json()
    {
        var result = CliRunner.Run("releases", "--repo", "examples/wikifarm", "-o", "json");
        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Out);
        Assert.Equal(40, doc.RootElement.GetArrayLength());
    }

    [Fact]
    public void Validate_accepts_the_example_farm()
    {
        var result = CliRunner.Run("validate", "--repo", "examples/wikifarm", "--state-file", "examples/wikifarm/state.yaml");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("wikifarm: valid", result.Out, StringComparison.Ordinal);

        var json = CliRunner.Run("validate", "--repo", "examples/wikifarm", "--state-file", "examples/wikifarm/state.yaml", "--output", "json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.True(doc.RootElement.GetProperty("valid").GetBoolean());
    }

    [Fact]
    public void Validate_reports_file_line_and_exit_code_2_for_a_broken_repo()
    {
        var broken = Path.Combine(CliRunner.Root, "tests", "Capstan.Core.Tests", "invalid", "needs-missing-release");
        var result = CliRunner.Run("validate", "--repo", broken);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("groups/mw-web.yaml:5:3: error: release 'mw-web/main' needs 'mw-web/statsd'", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);

        var json = CliRunner.Run("validate", "--repo", broken, "-o", "json");
        Assert.Equal(2, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.False(doc.RootElement.GetProperty("valid").GetBoolean());
        Assert.Equal(5, doc.RootElement.GetProperty("findings")[0].GetProperty("line").GetInt32());
    }

    [Fact]
    public void A_release_subset_is_given_with_subset_and_the_old_spellings_still_work_with_a_warning_naming_the_new_one()
    {
        using var temp = new TempDir();
        var repo = CliRunner.CopyFarm(Path.Combine(temp.Path, "farm"));
        var subset = CliRunner.Run("releases", "--repo", repo, "--subset", "staging", "-o", "json");
        Assert.True(subset.ExitCode == 0, subset.Err);
        Assert.Equal(string.Empty, subset.Err);

        var oldFlag = CliRunner.Run("releases", "--repo", repo, "-e", "staging", "-o", "json");
        Assert.Equal(subset.Out, oldFlag.Out);
        Assert.Equal("capstan: warning: --environment staging names a release subset; that spelling goes in the next release: use --subset staging (--environment names a test environment)\n", oldFlag.Err);

        var capstanYaml = Path.Combine(repo, "capstan.yaml");
        File.WriteAllText(capstanYaml, File.ReadAllText(capstanYaml).Replace("\nsubsets:\n", "\nenvironments:\n", StringComparison.Ordinal));
        var oldKey = CliRunner.Run("releases", "--repo", repo, "--subset", "staging", "-o", "json");
        Assert.Equal(subset.Out, oldKey.Out);
        Assert.Matches(@"^capstan.yaml:\d+:1: warning: environments: is the old spelling of subsets: ", oldKey.Err);

        var notASubset = CliRunner.Run("releases", "--repo", repo, "--environment", "alice-test");
        Assert.Equal(2, notASubset.ExitCode);
        Assert.Contains("'alice-test' is no release subset (allowed: production, staging)", notASubset.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("unknown datacenter 'ulsfo' (allowed: eqiad, codfw)", "render", "--repo", "examples/wikifarm", "--dc", "ulsfo")]
    [InlineData("unknown namespace 'mw-nope' (allowed: mw-api-ext, mw-api-int, mw-cron, mw-debug, mw-jobrunner, mw-script, mw-web)", "render", "--repo", "examples/wikifarm", "-n", "mw-nope")]
    [InlineData("unknown release 'nope' in mw-web (allowed: prometheus, main, canary)", "render", "--repo", "examples/wikifarm", "-n", "mw-web", "-r", "nope")]
    [InlineData("unknown subset 'qa' (allowed: production, staging)", "render", "--repo", "examples/wikifarm", "--subset", "qa")]
    [InlineData("state file 'nope.yaml' does not exist", "render", "--repo", "examples/wikifarm", "--state-file", "nope.yaml")]
    public void User_mistakes_get_one_line_and_exit_code_2(string message, params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"capstan: error: {message}\n", result.Err);
        Assert.Empty(result.Out);
    }

    [Fact]
    public void A_directory_without_capstan_yaml_is_not_a_repo()
    {
        using var temp = new TempDir();
        var result = CliRunner.Run("render", "--repo", temp.Path);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no capstan.yaml", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_arguments_exit_2_with_usage_hint()
    {
        var result = CliRunner.Run("render", "--frobnicate");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("capstan: unknown option '--frobnicate' for 'capstan render'\nRun 'capstan render --help' for usage.\n", result.Err);

        var badFormat = CliRunner.Run("render", "--repo", "examples/wikifarm", "-o", "xml");
        Assert.Equal(2, badFormat.ExitCode);
    }

    [Theory]
    [InlineData("capstan: unknown command 'deplyo' for 'capstan'; did you mean 'deploy'?\nRun 'capstan --help' for usage.\n", "deplyo")]
    [InlineData("capstan: unknown command 'gt' for 'capstan state'; did you mean 'get'?\nRun 'capstan state --help' for usage.\n", "state", "gt")]
    [InlineData("capstan: unknown option '--dryrun' for 'capstan deploy'; did you mean '--dry-run'?\nRun 'capstan deploy --help' for usage.\n", "deploy", "--dryrun")]
    [InlineData("capstan: unknown command 'xyzzy' for 'capstan'\nRun 'capstan --help' for usage.\n", "xyzzy")]
    public void A_typo_gets_one_line_with_the_nearest_command_or_option(string expected, params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal(expected, result.Err);
    }

    [Fact]
    public void The_builder_label_of_images_names_the_version_the_cli_reports()
    {
        // In a test the entry assembly is the test host, so the CLI's own assembly stands for what --version prints.
        var cli = typeof(CliApp).Assembly.GetName().Version!.ToString(3);
        Assert.Equal("capstan " + cli, Capstan.Images.ImageBuilder.BuilderName);
    }

    [Theory]
    [InlineData("deployment repo '{0}/README.md' is a file, not a directory: --repo names the directory that holds capstan.yaml", "README.md")]
    [InlineData("deployment repo '{0}/nosuch' does not exist", "nosuch")]
    public void A_repo_that_is_not_a_directory_says_so(string message, string repo)
    {
        var result = CliRunner.Run("validate", "--repo", repo);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"capstan: error: {string.Format(System.Globalization.CultureInfo.InvariantCulture, message, CliRunner.Root)}\n", result.Err);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("state", "--help")]
    [InlineData("state", "set", "--help")]
    [InlineData("state", "watch", "--help")]
    [InlineData("maintenance", "disable", "--help")]
    [InlineData("render", "--help")]
    [InlineData("validate", "--help")]
    [InlineData("releases", "--help")]
    public void Every_command_has_help(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Usage:", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void State_file_override_closes_the_maintenance_gate()
    {
        using var temp = new TempDir();
        var state = Path.Combine(temp.Path, "state.yaml");
        File.WriteAllText(state, "primary_dc: eqiad\nread_only: {eqiad: false, codfw: false}\nmaintenance_enabled: false\nmaintenance_reason: switchover\n");
        var closed = CliRunner.Run("render", "--repo", "examples/wikifarm", "-n", "mw-cron", "--state-file", state);
        Assert.Equal(0, closed.ExitCode);
        Assert.DoesNotContain("kind: CronJob", closed.Out, StringComparison.Ordinal);

        var store = "file://" + Path.Combine(temp.Path, "store");
        var open = CliRunner.Run("render", "--repo", "examples/wikifarm", "-n", "mw-cron", "--dc", "eqiad", "--state", store);
        Assert.Contains("kind: CronJob", open.Out, StringComparison.Ordinal);
        var secondary = CliRunner.Run("render", "--repo", "examples/wikifarm", "-n", "mw-cron", "--dc", "codfw", "--state", store);
        Assert.DoesNotContain("kind: CronJob", secondary.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Out_refuses_a_directory_it_did_not_write_and_changes_nothing()
    {
        using var temp = new TempDir();
        var precious = Path.Combine(temp.Path, "notes.txt");
        File.WriteAllText(precious, "keep me");
        var result = CliRunner.Run("render", "--repo", "examples/wikifarm", "--state-file", "examples/wikifarm/state.yaml", "--out", temp.Path);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal(["notes.txt"], Directory.EnumerateFileSystemEntries(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Out_replaces_its_own_earlier_output()
    {
        using var temp = new TempDir();
        var dir = Path.Combine(temp.Path, "r");
        Assert.Equal(0, CliRunner.Run("render", "--repo", "examples/wikifarm", "--state-file", "examples/wikifarm/state.yaml", "--out", dir).ExitCode);
        Assert.Equal(0, CliRunner.Run("render", "--repo", "examples/wikifarm", "-n", "mw-debug", "--out", dir).ExitCode);
        Assert.Equal(["mw-debug"], Directory.GetDirectories(Path.Combine(dir, "eqiad")).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Combine(dir, "eqiad", "mw-debug", "pinkunicorn", "deployment-mw-debug.eqiad.pinkunicorn.yaml")));
    }
}
