using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.Core.Values;

namespace Capstan.Core.Tests;

public sealed class ValuesMergerTests
{
    private static ValueNode Read(string yaml, string file) => YamlReader.ReadSingle(yaml, file, new DiagnosticBag())!;

    [Fact]
    public void Mappings_merge_deeply_and_the_later_layer_wins()
    {
        var merged = (ValueMap)ValuesMerger.Merge(
            Read("php: {workers: 8, opcache: {memory-mb: 1024, max-files: 1}}\nkeep: 1\n", "base.yaml"),
            Read("php: {workers: 12, opcache: {max-files: 2}}\n", "over.yaml"))!;
        var php = (ValueMap)merged["php"]!;
        Assert.Equal("12", ((ValueScalar)php["workers"]!).Text);
        Assert.Equal("over.yaml", php["workers"]!.Location.File);
        var opcache = (ValueMap)php["opcache"]!;
        Assert.Equal("1024", ((ValueScalar)opcache["memory-mb"]!).Text);
        Assert.Equal("base.yaml", opcache["memory-mb"]!.Location.File);
        Assert.Equal("2", ((ValueScalar)opcache["max-files"]!).Text);
        Assert.NotNull(merged["keep"]);
    }

    [Fact]
    public void Lists_are_replaced_not_appended()
    {
        var merged = (ValueMap)ValuesMerger.Merge(Read("l: [a, b, c]\n", "a"), Read("l: [d]\n", "b"))!;
        Assert.Single(((ValueList)merged["l"]!).Items);
    }

    [Fact]
    public void Null_in_a_later_layer_removes_the_key()
    {
        var merged = (ValueMap)ValuesMerger.Merge(Read("a: 1\nb: 2\n", "a"), Read("a: null\n", "b"))!;
        Assert.Null(merged["a"]);
        Assert.NotNull(merged["b"]);
    }

    [Fact]
    public void A_scalar_over_a_mapping_replaces_it()
    {
        var merged = (ValueMap)ValuesMerger.Merge(Read("a: {x: 1}\n", "a"), Read("a: 5\n", "b"))!;
        Assert.IsType<ValueScalar>(merged["a"]);
    }
}
