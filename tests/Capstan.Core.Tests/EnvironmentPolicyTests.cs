using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;

namespace Capstan.Core.Tests;

public sealed class EnvironmentPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("ci", 1, null)]
    [InlineData("ci", 2, "a ci environment lives at most 1 day; 2026-12-02 12:00 UTC is 2 days away (latest: 2026-12-01 12:00 UTC)")]
    [InlineData("integration", 90, null)]
    [InlineData("integration", 91, "an integration environment lives at most 90 days; 2027-03-01 12:00 UTC is 91 days away (latest: 2027-02-28 12:00 UTC)")]
    public void The_expiry_is_capped_by_the_class_and_the_cap_is_named(string purpose, int days, string? error)
    {
        var policy = EnvironmentPolicy.Default;
        var @base = purpose == "demo" ? EnvironmentBase.Pinned : EnvironmentBase.Follow;
        if (error is null)
        {
            Assert.Equal(purpose, policy.Check("alice", purpose, Now.AddDays(days), Now, @base, []).Name);
        }
        else
        {
            Assert.Equal(error, Assert.Throws<UserInputException>(() => policy.Check("alice", purpose, Now.AddDays(days), Now, @base, [])).Message);
        }
    }

    [Fact]
    public void Every_problem_of_a_create_is_named_at_once()
    {
        var error = Assert.Throws<UserInputException>(() => EnvironmentPolicy.Default.Check(" ", "feature", Now.AddDays(-1), Now, EnvironmentBase.Follow, []));
        Assert.Equal(
            "an environment needs an owner (--owner): who answers for it; the expiry 2026-11-29 12:00 UTC is not in the future; a feature environment needs a link to its task or patch (--link URL)",
            error.Message);
    }

    [Theory]
    [InlineData("integration", EnvironmentBase.Pinned, "an integration environment must be following production (drop --pin)")]
    [InlineData("demo", EnvironmentBase.Follow, "a demo environment must be pinned (--pin)")]
    public void A_class_with_a_base_allows_only_that_base(string purpose, EnvironmentBase @base, string error) =>
        Assert.Equal(error, Assert.Throws<UserInputException>(() => EnvironmentPolicy.Default.Check("alice", purpose, Now.AddDays(1), Now, @base, [])).Message);

    [Fact]
    public void An_unknown_purpose_lists_the_classes() =>
        Assert.Equal(
            "unknown purpose 'qa' (allowed: ci, feature, integration, demo)",
            Assert.Throws<UserInputException>(() => EnvironmentPolicy.Default.Check("alice", "qa", Now.AddDays(1), Now, EnvironmentBase.Follow, [])).Message);

    [Theory]
    [InlineData("7d", 7 * 24 * 60)]
    [InlineData("12h", 12 * 60)]
    [InlineData("90m", 90)]
    public void Durations_read_as_written(string text, int minutes) => Assert.Equal(TimeSpan.FromMinutes(minutes), EnvironmentPolicy.ParseDuration(text));

    [Theory]
    [InlineData("7")]
    [InlineData("d")]
    [InlineData("-1d")]
    [InlineData("1w")]
    [InlineData("9999999d")]
    public void Other_durations_are_refused(string text) =>
        Assert.Equal($"'{text}' is not a duration (a whole number and d, h or m: 7d, 12h, 90m)", Assert.Throws<UserInputException>(() => EnvironmentPolicy.ParseDuration(text)).Message);

    [Theory]
    [InlineData("alice-search", null)]
    [InlineData("Alice", "environment name 'Alice' ")]
    [InlineData("a--b", "environment name 'a--b' must not contain '--' (it separates the name from the namespace)")]
    [InlineData("a-rather-long-environment-name-for-a-test-of-lengths", "environment name 'a-rather-long-environment-name-for-a-test-of-lengths' is 1 character too long: namespace 'a-rather-long-environment-name-for-a-test-of-lengths--mw-api-ext' would exceed 63 characters (at most 51 characters with namespace mw-api-ext)")]
    public void Names_are_checked_against_the_namespaces_they_prefix(string name, string? error)
    {
        string[] namespaces = ["mw-web", "mw-api-ext", "mw-debug"];
        if (error is null)
        {
            EnvironmentNames.Check(name, namespaces);
            Assert.Equal("alice-search--mw-web", EnvironmentNames.Namespace(name, "mw-web"));
        }
        else
        {
            Assert.StartsWith(error, Assert.Throws<UserInputException>(() => EnvironmentNames.Check(name, namespaces)).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Classes_in_capstan_yaml_change_the_defaults_field_by_field_and_add_new_ones()
    {
        var root = Directory.CreateTempSubdirectory("capstan-policy-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "groups"));
            File.WriteAllText(Path.Combine(root, "groups", "mw-web.yaml"), "tls-port: 4450\nreleases:\n  main: {replicas: 2}\n");
            File.WriteAllText(Path.Combine(root, "capstan.yaml"), """
                project: tiny
                datacenters:
                  eqiad: {cluster: "local://eqiad"}
                test-environments:
                  classes:
                    feature: {max-lifetime: 14d, sleep-after: never}
                    perf: {max-lifetime: 3d, base: follow, quota: {pods: 50, requests.cpu: 200}, container-defaults: {requests: {cpu: 250m}}}
                """);
            var policy = Config.RepoLoader.Load(new Config.DirectoryRepoFiles(root)).Model.EnvironmentPolicy;
            Assert.Equal(["ci", "feature", "integration", "demo", "perf"], policy.Classes.Select(c => c.Name));
            var feature = policy.Class("feature");
            Assert.Equal((TimeSpan.FromDays(14), true, (TimeSpan?)null), (feature.MaxLifetime, feature.RequiresLinks, feature.SleepAfter));
            Assert.Equal(PurposeClass.DefaultQuota, feature.Quota);
            var perf = policy.Class("perf");
            Assert.Equal(EnvironmentBase.Follow, perf.Base);
            Assert.Equal(["pods=50", "requests.cpu=200"], perf.Quota.Select(kv => $"{kv.Key}={kv.Value}"));
            Assert.Equal(["cpu=250m"], perf.Defaults.Requests.Select(kv => $"{kv.Key}={kv.Value}"));
            Assert.Equal(ContainerDefaults.Default.Limits, perf.Defaults.Limits);
            Assert.Equal(
                "a feature environment lives at most 14 days; 2026-12-20 12:00 UTC is 20 days away (latest: 2026-12-14 12:00 UTC)",
                Assert.Throws<UserInputException>(() => policy.Check("alice", "feature", Now.AddDays(20), Now, EnvironmentBase.Follow, ["https://t.example/1"])).Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Set_values_become_one_document_each_and_cannot_change_a_documents_structure()
    {
        var documents = EnvironmentSettings.Documents(["php.workers=4", "debug=true", "mediawiki.site_name=Alice's wiki: {test}"]);
        Assert.Equal(
            ["(--set php.workers)", "(--set debug)", "(--set mediawiki.site_name)"],
            documents.Select(d => d.Key));
        Assert.Equal("php: {workers: 4}\n", documents[0].Value);
        Assert.Equal("debug: true\n", documents[1].Value);
        Assert.Equal("mediawiki: {site_name: 'Alice''s wiki: {test}'}\n", documents[2].Value);
        var bag = new DiagnosticBag();
        var site = Yaml.YamlReader.ReadSingle(documents[2].Value, "(--set)", bag) as Yaml.ValueMap;
        Assert.Empty(bag.Items);
        Assert.Equal("Alice's wiki: {test}", ((Yaml.ValueScalar)((Yaml.ValueMap)site!["mediawiki"]!)["site_name"]!).Text);

        Assert.Equal(
            "--set 'a..b=1' is not key=value (a dotted key of letters, digits, '_' and '-', as in php.workers=4)",
            Assert.Throws<UserInputException>(() => EnvironmentSettings.Documents(["a..b=1"])).Message);
        Assert.Throws<UserInputException>(() => EnvironmentSettings.Documents(["novalue"]));
        Assert.Throws<UserInputException>(() => EnvironmentSettings.Documents(["=1"]));
    }
}
