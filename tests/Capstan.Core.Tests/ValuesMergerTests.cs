using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.Core.Values;

namespace Capstan.Core.Tests;

public sealed class ValuesMergerTests
{
    private static ValueNode Read(string yaml, string file) => YamlReader.ReadSingle(yaml, file, new DiagnosticBag())!;

    private static ValueMap Merge(ValueNode @base, ValueNode overlay)
    {
        var diagnostics = new DiagnosticBag();
        var merged = (ValueMap)ValuesMerger.Merge(@base, overlay, diagnostics)!;
        Assert.Empty(diagnostics.Items);
        return merged;
    }

    [Fact]
    public void Mappings_merge_deeply_and_the_later_layer_wins()
    {
        var merged = Merge(
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
        var merged = Merge(Read("l: [a, b, c]\n", "a"), Read("l: [d]\n", "b"))!;
        Assert.Single(((ValueList)merged["l"]!).Items);
    }

    [Fact]
    public void Null_in_a_later_layer_removes_the_key()
    {
        var merged = Merge(Read("a: 1\nb: 2\n", "a"), Read("a: null\n", "b"))!;
        Assert.Null(merged["a"]);
        Assert.NotNull(merged["b"]);
    }

    [Theory]
    [InlineData("php: {workers: 8, display-errors: true}\n", "php: 12\n", "over.yaml:1:6: error: php must be a mapping (as at base.yaml:1:6), not the number 12; use null to remove it")]
    [InlineData("php: {opcache: {memory-mb: 1}}\n", "php: {opcache: [1]}\n", "over.yaml:1:16: error: php.opcache must be a mapping (as at base.yaml:1:16), not a list; use null to remove it")]
    [InlineData("php: 12\n", "php: {workers: 8}\n", "base.yaml:1:6: error: php must be a mapping (as at over.yaml:1:6), not the number 12; use null to remove it")]
    public void A_scalar_or_list_where_another_layer_has_a_mapping_is_an_error_at_the_value(string @base, string overlay, string expected)
    {
        var diagnostics = new DiagnosticBag();
        ValuesMerger.Merge(Read(@base, "base.yaml"), Read(overlay, "over.yaml"), diagnostics);
        Assert.Equal(expected, Assert.Single(diagnostics.Items).ToString());
    }

    [Fact]
    public void Null_removes_a_mapping_and_a_later_mapping_starts_afresh()
    {
        var removed = Merge(Read("php: {workers: 8}\n", "a"), Read("php: null\n", "b"));
        Assert.Null(removed["php"]);
        var again = Merge(removed, Read("php: {workers: 2}\n", "c"));
        Assert.Equal("2", ((ValueScalar)((ValueMap)again["php"]!)["workers"]!).Text);
    }
}
