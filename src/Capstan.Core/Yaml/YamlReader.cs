using Capstan.Core.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Capstan.Core.Yaml;

/// <summary>
/// Reads YAML text into <see cref="ValueNode"/> trees that keep their source locations. Syntax errors and
/// duplicate keys become diagnostics at the offending line; anchors and aliases are resolved. A document nested deeper
/// than <see cref="MaxDepth"/> levels, or one whose aliases would expand it past <see cref="MaxExpandedNodes"/> nodes
/// (an alias bomb), is an error at the line where it crosses the limit, so that no reader of the tree recurses or
/// expands without bound.
/// </summary>
public static class YamlReader
{
    /// <summary>How deep mappings and lists may nest (as System.Text.Json's default for JSON).</summary>
    public const int MaxDepth = 64;

    /// <summary>How many nodes a document may hold once every alias is expanded.</summary>
    public const int MaxExpandedNodes = 1_000_000;

    /// <summary>Reads every document of a YAML stream. Returns null documents for empty ones.</summary>
    public static IReadOnlyList<ValueNode?> ReadAll(string text, string file, DiagnosticBag diagnostics)
    {
        var documents = new List<ValueNode?>();
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, (ValueNode Node, long Size)>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            while (parser.TryConsume<DocumentStart>(out _))
            {
                anchors.Clear();
                var size = 0L;
                var root = ReadNode(parser, file, anchors, diagnostics, 1, ref size);
                parser.Consume<DocumentEnd>();
                documents.Add(root is ValueScalar { IsNull: true } ? null : root);
            }

            parser.Consume<StreamEnd>();
        }
        catch (YamlException ex)
        {
            var location = new SourceLocation(file, (int)ex.Start.Line, (int)ex.Start.Column);
            diagnostics.Error(location, $"invalid YAML: {CleanMessage(ex)}");
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this instead of a YamlException for some unclosed flow collections
            // (`key: [12` followed by more keys); the last event it produced is where the text stops making sense.
            var mark = parser.Current?.End;
            var location = mark is null ? SourceLocation.OfFile(file) : new SourceLocation(file, (int)mark.Value.Line, (int)mark.Value.Column);
            diagnostics.Error(location, "invalid YAML: the text after this point cannot be parsed (is a '[' or '{' left unclosed?)");
        }

        return documents;
    }

    /// <summary>Reads a file that must hold exactly one document; an empty file gives null.</summary>
    public static ValueNode? ReadSingle(string text, string file, DiagnosticBag diagnostics)
    {
        var documents = ReadAll(text, file, diagnostics);
        if (documents.Count > 1)
        {
            diagnostics.Error(SourceLocation.OfFile(file), "expected a single YAML document, found " + documents.Count);
        }

        return documents.Count > 0 ? documents[0] : null;
    }

    /// <summary>
    /// Reads one node at <paramref name="depth"/>, adding its expanded size (aliases counted as what they stand for) to
    /// <paramref name="size"/>, the document's running total.
    /// </summary>
    private static ValueNode ReadNode(IParser parser, string file, Dictionary<string, (ValueNode Node, long Size)> anchors, DiagnosticBag diagnostics, int depth, ref long size)
    {
        var current = parser.Current ?? throw new YamlException("unexpected end of input");
        var location = new SourceLocation(file, (int)current.Start.Line, (int)current.Start.Column);
        if (depth > MaxDepth && current is SequenceStart or MappingStart)
        {
            throw new YamlException(current.Start, current.End, $"mappings and lists are nested more than {MaxDepth} deep here");
        }

        var sizeBefore = size;
        size++;
        ValueNode node;
        string anchor;
        switch (current)
        {
            case AnchorAlias alias:
                parser.MoveNext();
                if (!anchors.TryGetValue(alias.Value.Value, out var target))
                {
                    throw new YamlException(current.Start, current.End, $"alias *{alias.Value.Value} names no anchor");
                }

                size += target.Size - 1;
                if (size > MaxExpandedNodes)
                {
                    throw new YamlException(current.Start, current.End, $"the aliases expand the document past {MaxExpandedNodes} nodes (an alias bomb?)");
                }

                return target.Node;

            case Scalar scalar:
                parser.MoveNext();
                node = new ValueScalar(scalar.Value, scalar.Style == ScalarStyle.Plain, location);
                anchor = scalar.Anchor.IsEmpty ? string.Empty : scalar.Anchor.Value;
                break;

            case SequenceStart sequenceStart:
                parser.MoveNext();
                var items = new List<ValueNode>();
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    items.Add(ReadNode(parser, file, anchors, diagnostics, depth + 1, ref size));
                }

                node = new ValueList(items, location);
                anchor = sequenceStart.Anchor.IsEmpty ? string.Empty : sequenceStart.Anchor.Value;
                break;

            case MappingStart mappingStart:
                parser.MoveNext();
                node = ReadMapping(parser, file, anchors, diagnostics, location, depth, ref size);
                anchor = mappingStart.Anchor.IsEmpty ? string.Empty : mappingStart.Anchor.Value;
                break;

            default:
                throw new YamlException(current.Start, current.End, $"unexpected {current.GetType().Name}");
        }

        if (anchor.Length > 0)
        {
            anchors[anchor] = (node, size - sizeBefore);
        }

        return node;
    }

    private static ValueMap ReadMapping(
        IParser parser, string file, Dictionary<string, (ValueNode Node, long Size)> anchors, DiagnosticBag diagnostics, SourceLocation location, int depth, ref long size)
    {
        var entries = new List<MapEntry>();
        var seen = new Dictionary<string, SourceLocation>(StringComparer.Ordinal);
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var keyNode = ReadNode(parser, file, anchors, diagnostics, depth + 1, ref size);
            var value = ReadNode(parser, file, anchors, diagnostics, depth + 1, ref size);
            if (keyNode is not ValueScalar key)
            {
                diagnostics.Error(keyNode.Location, "mapping keys must be plain strings");
                continue;
            }

            if (seen.TryGetValue(key.Text, out var first))
            {
                diagnostics.Error(key.Location, $"duplicate key '{key.Text}' (first defined at line {first.Line})");
                continue;
            }

            seen[key.Text] = key.Location;
            entries.Add(new MapEntry(key.Text, key.Location, value));
        }

        return new ValueMap(entries, location);
    }

    private static string CleanMessage(YamlException ex)
    {
        // YamlDotNet prefixes messages with "(Line: x, Col: y, Idx: z) - (Line: ...): "; the location is reported separately.
        var message = ex.Message;
        var marker = message.LastIndexOf("): ", StringComparison.Ordinal);
        if (message.StartsWith("(Line:", StringComparison.Ordinal) && marker >= 0)
        {
            message = message[(marker + 3)..];
        }

        return message.TrimEnd('.').Trim();
    }
}
