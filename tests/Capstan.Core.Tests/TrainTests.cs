using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Train;

namespace Capstan.Core.Tests;

/// <summary>The weekly train over the example farm's config tree: where it is, its moves, and what validate finds.</summary>
public sealed class TrainTests
{
    private const string Versions = "mediawiki-config/wikiversions.json";
    private static readonly string[] ImageVersions = ["php-1.44", "php-1.45"];

    private static IRepoFiles Files(IReadOnlyDictionary<string, string>? overrides = null) =>
        new OverlayRepoFiles(new DirectoryRepoFiles(RepoPaths.ExampleFarm), overrides ?? new Dictionary<string, string>());

    private static TrainMap Map(IRepoFiles files) => TrainMap.Load(FarmFixture.Model, files);

    /// <summary>Applies a move's wikiversions, as the train writes it, and reads the map again.</summary>
    private static TrainMap After(TrainMove move) => Map(Files(new Dictionary<string, string> { [Versions] = move.Result.Write() }));

    private static string VersionOf(TrainMap map, string group) => string.Join("+", map.VersionsOf(map.Groups.Single(g => g.Name == group)).Select(v => v.Version));

    [Fact]
    public void The_example_farm_train_starts_with_every_group_on_the_old_version_and_has_no_problem()
    {
        var map = Map(Files());
        Assert.Equal(["testwikis", "group0", "group1", "group2"], map.Groups.Select(g => g.Name));
        Assert.All(map.Groups, g => Assert.Equal("php-1.44", VersionOf(map, g.Name)));
        Assert.Empty(map.Problems(ImageVersions));
        Assert.Empty(TrainMap.Check(FarmFixture.Model, Files()));
    }

    [Fact]
    public void Forward_moves_one_group_at_a_time_to_the_newest_version_then_stops_and_backward_retraces()
    {
        var map = Map(Files());
        foreach (var group in new[] { "testwikis", "group0", "group1", "group2" })
        {
            var move = TrainMove.Plan(map, ImageVersions, TrainDirection.Forward, null, null);
            var change = Assert.Single(move.Changes);
            Assert.Equal((group, "php-1.44", "php-1.45"), (change.Group, change.From, change.To));
            Assert.True(move.MovesForward);
            Assert.Equal(group, move.Stop);
            map = After(move);
            Assert.Equal("php-1.45", VersionOf(map, group));
        }

        Assert.True(TrainMove.Plan(map, ImageVersions, TrainDirection.Forward, null, null).IsNoOp);
        var back = TrainMove.Plan(map, ImageVersions, TrainDirection.Backward, null, null);
        Assert.Equal(("group2", "php-1.45", "php-1.44"), (back.Changes.Single().Group, back.Changes.Single().From, back.Changes.Single().To));
        Assert.False(back.MovesForward);
        Assert.Equal("group1", back.Stop);
        Assert.Equal("train backward: group2 php-1.45 → php-1.44 (4 wikis)", back.Describe());
        map = After(back);
        Assert.Equal("php-1.44", VersionOf(map, "group2"));
        Assert.Equal("php-1.45", VersionOf(map, "group1"));
    }

    [Fact]
    public void To_a_group_sets_every_group_up_to_it_on_the_new_version_and_START_puts_all_back()
    {
        var map = After(TrainMove.Plan(Map(Files()), ImageVersions, TrainDirection.To, "group1", null));
        Assert.Equal(["php-1.45", "php-1.45", "php-1.45", "php-1.44"], map.Groups.Select(g => VersionOf(map, g.Name)));

        var toGroup0 = TrainMove.Plan(map, ImageVersions, TrainDirection.To, "group0", null);
        Assert.Equal("group1", Assert.Single(toGroup0.Changes).Group);
        Assert.False(toGroup0.MovesForward);

        var start = TrainMove.Plan(map, ImageVersions, TrainDirection.To, TrainSettings.Start, null);
        Assert.Equal(["testwikis", "group0", "group1"], start.Changes.Select(c => c.Group));
        map = After(start);
        Assert.All(map.Groups, g => Assert.Equal("php-1.44", VersionOf(map, g.Name)));
        Assert.True(TrainMove.Plan(map, ImageVersions, TrainDirection.Backward, null, null).IsNoOp);

        var unknown = Assert.Throws<UserInputException>(() => TrainMove.Plan(map, ImageVersions, TrainDirection.To, "group9", null));
        Assert.Equal("unknown train group 'group9' (allowed: START, testwikis, group0, group1, group2)", unknown.Message);
    }

    [Fact]
    public void Forward_and_backward_touch_one_group_each_and_wikis_on_other_versions_stay_where_they_are()
    {
        // testwikis and group0 run php-1.45, but a new test wiki was added on php-1.44, and one group2 wiki runs php-1.43.
        var onNew = new HashSet<string>(["testwiki", "test2wiki", "testcommonswiki", "mediawikiwiki", "officewiki", "foundationwiki"], StringComparer.Ordinal);
        var text = "{\n" + string.Join(",\n", Map(Files()).Versions.Map.Keys.Append("test3wiki").Order(StringComparer.Ordinal)
            .Select(w => $"\t\"{w}\": \"{(onNew.Contains(w) ? "php-1.45" : w == "enwiki" ? "php-1.43" : "php-1.44")}\"")) + "\n}\n";
        var testwikis = File.ReadAllText(Path.Combine(RepoPaths.ExampleFarm, "mediawiki-config/dblists/testwikis.dblist")) + "test3wiki\n";
        var files = new Dictionary<string, string> { [Versions] = text, ["mediawiki-config/dblists/testwikis.dblist"] = testwikis };
        var map = Map(Files(files));

        var forward = TrainMove.Plan(map, ImageVersions, TrainDirection.Forward, null, null);
        Assert.Equal("train forward: testwikis php-1.44 → php-1.45 (1 wiki)", forward.Describe());

        var backward = TrainMove.Plan(map, ImageVersions, TrainDirection.Backward, null, null);
        Assert.Equal("train backward: group0 php-1.45 → php-1.44 (3 wikis)", backward.Describe());
        Assert.False(backward.MovesForward);

        var start = TrainMove.Plan(map, ImageVersions, TrainDirection.To, TrainSettings.Start, null);
        Assert.Equal("train to START: testwikis php-1.45 → php-1.44 (3 wikis); group0 php-1.45 → php-1.44 (3 wikis)", start.Describe());
        Assert.False(start.MovesForward);
        Assert.Equal("php-1.43", start.Result.Map["enwiki"]);
        Assert.Equal("php-1.44", start.Result.Map["test3wiki"]);
    }

    [Fact]
    public void A_version_not_in_the_image_is_refused_naming_the_versions_it_has()
    {
        var ex = Assert.Throws<UserInputException>(() => TrainMove.Plan(Map(Files()), ImageVersions, TrainDirection.Forward, null, "php-1.46"));
        Assert.Equal("php-1.46 is not in the image (image.sources: php-1.44, php-1.45): add its code tree to image.sources first", ex.Message);
    }

    [Fact]
    public void Validate_finds_a_version_not_in_the_image_a_wiki_in_two_groups_and_a_wiki_in_none_with_file_and_line()
    {
        var versions = File.ReadAllText(Path.Combine(RepoPaths.ExampleFarm, Versions))
            .Replace("\"enwiki\": \"php-1.44\"", "\"enwiki\": \"php-1.43\"", StringComparison.Ordinal)
            .Replace("\"wikidatawiki\": \"php-1.44\"", "\"wikidatawiki\": \"php-1.44\",\n\t\"zzwiki\": \"php-1.44\"", StringComparison.Ordinal);
        var group0 = File.ReadAllText(Path.Combine(RepoPaths.ExampleFarm, "mediawiki-config/dblists/group0.dblist")) + "testwiki\n";
        var found = TrainMap.Check(FarmFixture.Model, Files(new Dictionary<string, string> { [Versions] = versions, ["mediawiki-config/dblists/group0.dblist"] = group0 }))
            .Select(d => d.ToString()).ToList();
        Assert.Contains(found, d => d.StartsWith($"{Versions}:5:1", StringComparison.Ordinal) && d.Contains("php-1.43 (run by enwiki) is not in the image (image.sources: php-1.44, php-1.45)", StringComparison.Ordinal));
        Assert.Contains(found, d => d.StartsWith("mediawiki-config/dblists/group0.dblist:5:1", StringComparison.Ordinal) && d.Contains("testwiki is also in group testwikis: every wiki belongs to exactly one group", StringComparison.Ordinal));
        Assert.Contains(found, d => d.Contains("zzwiki is in no group (train.groups: testwikis, group0, group1, group2)", StringComparison.Ordinal));
        Assert.Equal(3, found.Count);
    }

    [Fact]
    public void A_broken_wikiversions_names_its_file_and_line_and_the_written_form_reads_back_the_same()
    {
        var bad = Assert.Throws<UserInputException>(() => WikiVersions.Parse("{\n\t\"enwiki\": \"php-1.44\",\n\t\"dewiki\": 44\n}\n", "w.json"));
        Assert.Equal("w.json:3: the version of 'dewiki' must be a code tree's name such as \"php-1.44\" (letters, digits, '.', '-' and '_')", bad.Message);
        Assert.StartsWith("w.json:2: not valid JSON", Assert.Throws<UserInputException>(() => WikiVersions.Parse("{\n\t\"enwiki\" \"php-1.44\"\n}", "w.json")).Message, StringComparison.Ordinal);
        Assert.StartsWith("w.json:3: 'enwiki' is listed twice", Assert.Throws<UserInputException>(() => WikiVersions.Parse("{\n\t\"enwiki\": \"a\",\n\t\"enwiki\": \"b\"\n}", "w.json")).Message, StringComparison.Ordinal);

        var text = File.ReadAllText(Path.Combine(RepoPaths.ExampleFarm, Versions));
        Assert.Equal(text, WikiVersions.Parse(text, Versions).Write());
    }

    [Fact]
    public void Hostile_train_files_are_refused_with_file_and_line_and_control_characters_shown_escaped()
    {
        Assert.Equal("w.json:2: the version of 'enwiki' must be a code tree's name such as \"php-1.44\" (letters, digits, '.', '-' and '_')",
            Assert.Throws<UserInputException>(() => WikiVersions.Parse("{\n\t\"enwiki\": \"../../etc\"\n}", "w.json")).Message);
        Assert.Equal("w.json:2: 'en\\ewiki' is not a wiki name (a database name: lower-case letters, digits and '_', at most 64)",
            Assert.Throws<UserInputException>(() => WikiVersions.Parse("{\n\t\"en\\u001bwiki\": \"php-1.44\"\n}", "w.json")).Message);
        Assert.StartsWith("w.json:1: not valid JSON", Assert.Throws<UserInputException>(() => WikiVersions.Parse(new string('[', 100_000), "w.json")).Message, StringComparison.Ordinal);
        Assert.Contains("more than a wikiversions file may hold", Assert.Throws<UserInputException>(() => WikiVersions.Parse(new string(' ', WikiVersions.MaxBytes + 1), "w.json")).Message, StringComparison.Ordinal);

        var dblist = Files(new Dictionary<string, string> { ["mediawiki-config/dblists/group1.dblist"] = "commonswiki\n# fine\nwiki\u001b[31m\n" });
        var found = Assert.Single(TrainMap.Check(FarmFixture.Model, dblist));
        Assert.Equal("mediawiki-config/dblists/group1.dblist:3: 'wiki\\e[31m' is not a wiki name (a database name: lower-case letters, digits and '_', at most 64)", found.Message);
    }

    [Fact]
    public void Versions_sort_by_their_numbers()
    {
        Assert.Equal(["php-1.9", "php-1.10", "php-1.44.0-wmf.3", "php-1.44.0-wmf.12", "php-1.45"],
            new[] { "php-1.45", "php-1.10", "php-1.44.0-wmf.12", "php-1.9", "php-1.44.0-wmf.3" }.Order(VersionOrder.Instance));
    }
}
