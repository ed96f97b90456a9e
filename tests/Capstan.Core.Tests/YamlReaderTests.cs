using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Tests;

public sealed class YamlReaderTests
{
    [Fact]
    public void Nodes_remember_file_line_and_column()
    {
        var map = Assert.IsType<ValueMap>(YamlReader.ReadSingle("a:\n  b: [1, 2]\n  c: x\n", "f.yaml", new DiagnosticBag()));
        var inner = Assert.IsType<ValueMap>(map["a"]);
        Assert.Equal(new SourceLocation("f.yaml", 2, 6), inner["b"]!.Location);
        Assert.True(inner.TryGet("c", out var c));
        Assert.Equal(new SourceLocation("f.yaml", 3, 3), c.KeyLocation);
    }

    [Fact]
    public void Duplicate_keys_are_errors_at_the_second_key()
    {
        var diagnostics = new DiagnosticBag();
        YamlReader.ReadSingle("a: 1\nb: 2\na: 3\n", "f.yaml", diagnostics);
        var error = Assert.Single(diagnostics.Items);
        Assert.Equal("f.yaml:3:1: error: duplicate key 'a' (first defined at line 1)", error.ToString());
    }

    [Fact]
    public void Aliases_resolve_to_their_anchor()
    {
        var map = Assert.IsType<ValueMap>(YamlReader.ReadSingle("base: &b {x: 1}\ncopy: *b\n", "f.yaml", new DiagnosticBag()));
        Assert.Same(map["base"], map["copy"]);
    }

    [Theory]
    [InlineData(65)]
    [InlineData(100_000)]
    public void Nesting_past_the_limit_is_an_error_at_its_line_not_a_crash(int depth)
    {
        var diagnostics = new DiagnosticBag();
        YamlReader.ReadAll("a: 1\nb:\n" + string.Concat(Enumerable.Repeat("- ", depth)) + "x\n", "f.yaml", diagnostics);
        var error = Assert.Single(diagnostics.Items);
        Assert.Equal($"f.yaml:3:{(2 * YamlReader.MaxDepth) - 1}: error: invalid YAML: mappings and lists are nested more than {YamlReader.MaxDepth} deep here", error.ToString());
    }

    [Fact]
    public void Nesting_up_to_the_limit_is_read()
    {
        var diagnostics = new DiagnosticBag();
        YamlReader.ReadAll(string.Concat(Enumerable.Repeat("[", YamlReader.MaxDepth)) + string.Concat(Enumerable.Repeat("]", YamlReader.MaxDepth)), "f.yaml", diagnostics);
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
    }

    [Fact]
    public void An_alias_bomb_is_an_error_at_the_alias_that_crosses_the_budget()
    {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + string.Concat(Enumerable.Range(1, 9).Select(i => $"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 9))}]\n"));
        var diagnostics = new DiagnosticBag();
        YamlReader.ReadAll(text, "f.yaml", diagnostics);
        var error = Assert.Single(diagnostics.Items);
        Assert.StartsWith("f.yaml:7:", error.ToString(), StringComparison.Ordinal);
        Assert.EndsWith($"error: invalid YAML: the aliases expand the document past {YamlReader.MaxExpandedNodes} nodes (an alias bomb?)", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Syntax_errors_are_diagnostics_not_exceptions()
    {
        var diagnostics = new DiagnosticBag();
        YamlReader.ReadAll("a: [1, 2\n", "f.yaml", diagnostics);
        Assert.True(diagnostics.HasErrors);
        Assert.StartsWith("f.yaml:", diagnostics.Items[0].ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("~", ScalarType.Null)]
    [InlineData("null", ScalarType.Null)]
    [InlineData("true", ScalarType.Bool)]
    [InlineData("False", ScalarType.Bool)]
    [InlineData("yes", ScalarType.String)]
    [InlineData("12", ScalarType.Int)]
    [InlineData("-3", ScalarType.Int)]
    [InlineData("0x1f", ScalarType.Int)]
    [InlineData("0o17", ScalarType.Int)]
    [InlineData("1.5", ScalarType.Float)]
    [InlineData("1e3", ScalarType.Float)]
    [InlineData(".inf", ScalarType.Float)]
    [InlineData("4.5.6", ScalarType.String)]
    [InlineData("200m", ScalarType.String)]
    public void Plain_scalars_follow_the_core_schema(string text, ScalarType expected)
    {
        Assert.Equal(expected, ScalarTyping.Classify(text));
    }

    [Fact]
    public void Quoted_scalars_are_always_strings()
    {
        var map = Assert.IsType<ValueMap>(YamlReader.ReadSingle("a: \"true\"\nb: '12'\n", "f.yaml", new DiagnosticBag()));
        Assert.Equal(ScalarType.String, ((ValueScalar)map["a"]!).Type);
        Assert.Equal(ScalarType.String, ((ValueScalar)map["b"]!).Type);
    }
}
