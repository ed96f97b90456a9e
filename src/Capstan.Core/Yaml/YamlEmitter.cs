using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Core.Yaml;

/// <summary>
/// Writes a JSON tree as block-style YAML, deterministically: keys in the tree's order, <c>\n</c> newlines,
/// two-space indentation, sequences at their parent key's indentation (as kubectl prints them), strings quoted
/// only when a YAML 1.1 or 1.2 reader could take them for something else, multi-line strings as literal blocks.
/// </summary>
public static class YamlEmitter
{
    /// <summary>Emits one document (no leading <c>---</c>).</summary>
    public static string Emit(JsonNode? node) => Emit(JsonSerializer.SerializeToElement(node));

    /// <summary>Emits one document (no leading <c>---</c>).</summary>
    public static string Emit(JsonElement element)
    {
        var sb = new StringBuilder(1024);
        Write(sb, element);
        return sb.ToString();
    }

    /// <summary>Appends one document to a builder.</summary>
    public static void Write(StringBuilder sb, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object when HasItems(element):
                WriteMapping(sb, element, 0);
                break;
            case JsonValueKind.Array when element.GetArrayLength() > 0:
                WriteSequence(sb, element, 0);
                break;
            default:
                WriteInline(sb, element, 0);
                sb.Append('\n');
                break;
        }
    }

    private static bool HasItems(JsonElement obj)
    {
        using var e = obj.EnumerateObject();
        return e.MoveNext();
    }

    private static void WriteMapping(StringBuilder sb, JsonElement obj, int indent)
    {
        var first = true;
        foreach (var property in obj.EnumerateObject())
        {
            if (!first)
            {
                sb.Append(' ', indent);
            }

            first = false;
            AppendScalarString(sb, property.Name, indent, allowBlock: false);
            sb.Append(':');
            var value = property.Value;
            if (value.ValueKind == JsonValueKind.Object && HasItems(value))
            {
                sb.Append('\n').Append(' ', indent + 2);
                WriteMapping(sb, value, indent + 2);
            }
            else if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0)
            {
                sb.Append('\n').Append(' ', indent);
                WriteSequence(sb, value, indent);
            }
            else
            {
                sb.Append(' ');
                WriteInline(sb, value, indent + 2);
                sb.Append('\n');
            }
        }
    }

    private static void WriteSequence(StringBuilder sb, JsonElement arr, int indent)
    {
        var first = true;
        foreach (var item in arr.EnumerateArray())
        {
            if (!first)
            {
                sb.Append(' ', indent);
            }

            first = false;
            sb.Append("- ");
            if (item.ValueKind == JsonValueKind.Object && HasItems(item))
            {
                WriteMapping(sb, item, indent + 2);
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() > 0)
            {
                WriteSequence(sb, item, indent + 2);
            }
            else
            {
                WriteInline(sb, item, indent + 2);
                sb.Append('\n');
            }
        }
    }

    private static void WriteInline(StringBuilder sb, JsonElement value, int blockIndent)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append("{}");
                break;
            case JsonValueKind.Array:
                sb.Append("[]");
                break;
            case JsonValueKind.String:
                AppendScalarString(sb, value.GetString()!, blockIndent, allowBlock: true);
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Number:
                sb.Append(value.GetRawText());
                break;
            default:
                sb.Append("null");
                break;
        }
    }

    /// <summary>Appends a string scalar in the plainest style that reads back as the same string.</summary>
    internal static void AppendScalarString(StringBuilder sb, string text, int blockIndent, bool allowBlock)
    {
        if (IsSafePlain(text))
        {
            sb.Append(text);
            return;
        }

        if (allowBlock && text.Contains('\n', StringComparison.Ordinal) && CanBeLiteralBlock(text))
        {
            AppendLiteralBlock(sb, text, blockIndent);
            return;
        }

        AppendDoubleQuoted(sb, text);
    }

    private static void AppendLiteralBlock(StringBuilder sb, string text, int indent)
    {
        sb.Append('|');
        if (text[0] == ' ')
        {
            sb.Append('2');
        }

        var trailing = 0;
        for (var i = text.Length - 1; i >= 0 && text[i] == '\n'; i--)
        {
            trailing++;
        }

        if (trailing == 0)
        {
            sb.Append('-');
        }
        else if (trailing > 1)
        {
            sb.Append('+');
        }

        var body = trailing > 0 ? text[..^1] : text;
        foreach (var line in body.Split('\n'))
        {
            sb.Append('\n');
            if (line.Length > 0)
            {
                sb.Append(' ', indent).Append(line);
            }
        }
    }

    private static bool CanBeLiteralBlock(string text)
    {
        foreach (var c in text)
        {
            if (c != '\n' && c != '\t' && (char.IsControl(c) || c == '\uFEFF' || char.IsSurrogate(c) || c == '\u2028' || c == '\u2029' || c == '\u0085'))
            {
                return false;
            }
        }

        // A line of only spaces before content would be read as indentation; keep such text quoted.
        foreach (var line in text.Split('\n'))
        {
            if (line.Length > 0 && line.Trim(' ').Length == 0)
            {
                return false;
            }
        }

        return true;
    }

    private static void AppendDoubleQuoted(StringBuilder sb, string text)
    {
        sb.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (char.IsControl(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }

    /// <summary>
    /// True when a string can be written without quotes and still read back as that string by YAML 1.1 and 1.2
    /// readers alike (so "yes", "on", "0777" and "1e3" are quoted, as are strings with indicators).
    /// </summary>
    internal static bool IsSafePlain(string text)
    {
        if (text.Length == 0 || text[0] == ' ' || text[^1] == ' ')
        {
            return false;
        }

        if ("-?:,[]{}#&*!|>'\"%@`".Contains(text[0], StringComparison.Ordinal))
        {
            // "-" followed by a non-space is still plain in YAML, but a leading "-" may read as a number.
            if (!(text[0] == '-' && text.Length > 1 && text[1] != ' ' && !LooksNumeric(text)))
            {
                return false;
            }
        }

        foreach (var c in text)
        {
            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF')
            {
                return false;
            }
        }

        if (text.Contains(": ", StringComparison.Ordinal) || text.Contains(" #", StringComparison.Ordinal) || text[^1] == ':')
        {
            return false;
        }

        if (ScalarTyping.Classify(text) != ScalarType.String || IsYaml11Special(text) || LooksNumeric(text))
        {
            return false;
        }

        return true;
    }

    private static bool LooksNumeric(string text)
    {
        // YAML 1.1 readers take "0777", "1_000", "0b101", "1:30" (sexagesimal) and "+12" as numbers.
        var start = text[0] is '-' or '+' ? 1 : 0;
        if (start >= text.Length || !(char.IsAsciiDigit(text[start]) || text[start] == '.'))
        {
            return false;
        }

        foreach (var c in text.AsSpan(start))
        {
            if (!(char.IsAsciiDigit(c) || c is '_' or '.' or ':' or 'e' or 'E' or '+' or '-' or 'x' or 'o' or 'b' ||
                  char.IsAsciiHexDigit(c)))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsYaml11Special(string text) => text.ToUpperInvariant() switch
    {
        "Y" or "N" or "YES" or "NO" or "ON" or "OFF" or "TRUE" or "FALSE" or "NULL" or "~" => true,
        "<<" or "=" => true,
        _ => false,
    };
}
