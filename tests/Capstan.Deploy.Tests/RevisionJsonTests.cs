using System.IO.Compression;
using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Deploy.Json;

namespace Capstan.Deploy.Tests;

/// <summary>A release's revision leaves the process in one shape, whichever way it is written.</summary>
public sealed class RevisionJsonTests
{
    private static readonly ReleaseRecord Record = new(
        new ReleaseId("eqiad", "mw-web", "main"), 4, "deployed", "sha256:abc", [],
        new Dictionary<string, string> { ["mw-web-main-app"] = "registry.local/mediawiki:1.44+wmf.1", ["mw-web-main-httpd"] = "registry.local/httpd:2.4" },
        "alice", new DateTimeOffset(2026, 12, 7, 10, 0, 0, TimeSpan.Zero), "T123 fix «search» + cache", "20261207-100000-abcdef");

    [Fact]
    public void The_text_and_the_node_have_the_same_names_as_the_record_Secret()
    {
        var text = RevisionJson.Serialize([RevisionJson.Of(Record)]);
        var fromText = Assert.IsType<JsonObject>(Assert.Single(JsonNode.Parse(text)!.AsArray()));
        var node = Assert.IsType<JsonObject>(Assert.Single(RevisionJson.ToNode([RevisionJson.Of(Record)]).AsArray()));
        string[] names = ["release", "revision", "status", "at", "actor", "reason", "planId", "manifestHash", "mediawikiImage", "images"];

        Assert.Equal(names, fromText.Select(p => p.Key));
        Assert.Equal(names, node.Select(p => p.Key));
        Assert.True(JsonNode.DeepEquals(fromText, node));

        // The record's Secret names the same facts the same way.
        var secret = ReleaseRecords.ToSecret(Record);
        using var gzip = new GZipStream(new MemoryStream(Convert.FromBase64String(secret["data"]!["release"]!.GetValue<string>())), CompressionMode.Decompress);
        var body = JsonNode.Parse(gzip)!.AsObject();
        Assert.All(names.Where(n => n is not ("release" or "mediawikiImage")), n => Assert.True(JsonNode.DeepEquals(body[n], fromText[n]), n));

        Assert.Equal("eqiad/mw-web/main", fromText["release"]!.GetValue<string>());
        Assert.Equal("alice", fromText["actor"]!.GetValue<string>());
        Assert.Equal("20261207-100000-abcdef", fromText["planId"]!.GetValue<string>());
        Assert.Equal("registry.local/mediawiki:1.44+wmf.1", fromText["mediawikiImage"]!.GetValue<string>());
        Assert.Equal(Record.At, fromText["at"]!.GetValue<DateTimeOffset>());
    }

    [Fact]
    public void Text_is_written_as_given_and_indented_only_when_asked()
    {
        var compact = RevisionJson.Serialize([RevisionJson.Of(Record)]);
        var indented = RevisionJson.Serialize([RevisionJson.Of(Record)], indented: true);

        Assert.Contains("T123 fix «search» + cache", compact, StringComparison.Ordinal);
        Assert.Contains("1.44+wmf.1", compact, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', compact);
        Assert.Contains("\n  {\n    \"release\": \"eqiad/mw-web/main\",", indented, StringComparison.Ordinal);
    }
}
