using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Tests;

public sealed class YamlEmitterTests
{
    public static TheoryData<string> TrickyStrings() =>
    [
        "plain", "", " leading space", "trailing space ", "yes", "No", "on", "OFF", "y", "true", "False", "null", "~",
        "0777", "0x1F", "1e3", "1_000", "1:30", "+12", "-5", ".5", "3.14", "4450", "a: b", "a:b", "#comment", "a #b",
        "- item", "-dash", "[x]", "{x}", "*alias", "&anchor", "!tag", "|pipe", ">fold", "'single'", "\"double\"",
        "%percent", "@at", "`tick", "3%", "200m", "1Gi", "line1\nline2", "line1\nline2\n", "trailing\n\n",
        "  indented first\nsecond\n", "tab\there", "bell\u0007", "ünïcödé", "back\\slash", "colon at end:",
        "$(STATSD_EXPORTER_PROMETHEUS_SERVICE_HOST)", "*.wikipedia.org", "<<", "=", "a\n  \nb",
    ];

    [Theory]
    [MemberData(nameof(TrickyStrings))]
    public void Strings_read_back_as_written(string text)
    {
        var yaml = YamlEmitter.Emit(new JsonObject { ["key"] = text, ["list"] = new JsonArray(text) });
        var diagnostics = new DiagnosticBag();
        var map = Assert.IsType<ValueMap>(YamlReader.ReadSingle(yaml, "t.yaml", diagnostics));
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items) + "\n" + yaml);
        var scalar = Assert.IsType<ValueScalar>(map["key"]);
        Assert.Equal(ScalarType.String, scalar.Type);
        Assert.Equal(text, scalar.Text);
        var item = Assert.IsType<ValueScalar>(Assert.IsType<ValueList>(map["list"]).Items[0]);
        Assert.Equal(text, item.Text);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("on")]
    [InlineData("0777")]
    [InlineData("1e3")]
    [InlineData("true")]
    [InlineData("")]
    public void Strings_that_a_yaml_reader_could_mistake_are_quoted(string text)
    {
        var yaml = YamlEmitter.Emit(new JsonObject { ["k"] = text });
        Assert.Equal($"k: \"{text}\"\n", yaml);
    }

    [Fact]
    public void Output_is_block_style_with_sequences_at_the_key_indentation()
    {
        var node = new JsonObject
        {
            ["a"] = 1,
            ["b"] = new JsonObject { ["c"] = true, ["d"] = new JsonArray("x", new JsonObject { ["e"] = "f", ["g"] = 2.5 }) },
            ["empty"] = new JsonObject(),
            ["none"] = new JsonArray(),
            ["text"] = "one\ntwo\n",
        };
        const string expected = "a: 1\nb:\n  c: true\n  d:\n  - x\n  - e: f\n    g: 2.5\nempty: {}\nnone: []\ntext: |\n  one\n  two\n";
        Assert.Equal(expected, YamlEmitter.Emit(node));
    }

    [Fact]
    public void Numbers_and_booleans_keep_their_type()
    {
        var yaml = YamlEmitter.Emit(new JsonObject { ["n"] = 42, ["b"] = false, ["s"] = "42" });
        var map = Assert.IsType<ValueMap>(YamlReader.ReadSingle(yaml, "t.yaml", new DiagnosticBag()));
        Assert.Equal(ScalarType.Int, ((ValueScalar)map["n"]!).Type);
        Assert.Equal(ScalarType.Bool, ((ValueScalar)map["b"]!).Type);
        Assert.Equal(ScalarType.String, ((ValueScalar)map["s"]!).Type);
    }
}
