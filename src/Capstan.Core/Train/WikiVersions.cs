using System.Text;
using System.Text.Json;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.Train;

/// <summary>
/// <c>wikiversions.json</c>: which MediaWiki version (the code tree's directory in the image, <c>php-1.44</c>) each wiki
/// runs. Written back as the farm writes it: one wiki per line, sorted, tab-indented.
/// </summary>
public sealed class WikiVersions
{
    private readonly SortedDictionary<string, string> _map;
    private readonly string _text;

    private WikiVersions(SortedDictionary<string, string> map, string text)
    {
        _map = map;
        _text = text;
    }

    /// <summary>Wiki → version, sorted by wiki.</summary>
    public IReadOnlyDictionary<string, string> Map => _map;

    /// <summary>Parses the file's text; a mistake names the file and line.</summary>
    public static WikiVersions Parse(string text, string file)
    {
        if (text.Length > MaxBytes)
        {
            throw new UserInputException($"{file}: {text.Length} characters is more than a wikiversions file may hold ({MaxBytes})");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            throw new UserInputException($"{file}:{(ex.LineNumber ?? 0) + 1}: not valid JSON ({ex.Message.Split(" Path:")[0].TrimEnd('.')})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new UserInputException($"{file}:1: must be a JSON object of wiki → version (\"enwiki\": \"php-1.44\")");
            }

            var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!IsWiki(property.Name))
                {
                    throw new UserInputException($"{file}:{LineOf(text, property.Name)}: '{FreeText.Printable(property.Name)}' is not a wiki name (a database name: lower-case letters, digits and '_', at most 64)");
                }

                if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not { } version || !IsVersion(version))
                {
                    throw new UserInputException($"{file}:{LineOf(text, property.Name)}: the version of '{property.Name}' must be a code tree's name such as \"php-1.44\" (letters, digits, '.', '-' and '_')");
                }

                if (!map.TryAdd(property.Name, version))
                {
                    throw new UserInputException($"{file}:{LineOf(text, property.Name, last: true)}: '{property.Name}' is listed twice");
                }
            }

            return new WikiVersions(map, text);
        }
    }

    /// <summary>The most a wikiversions file may hold; a bigger one is refused before it is parsed.</summary>
    public const int MaxBytes = 16 << 20;

    /// <summary>True for a wiki (database) name: lower-case letters, digits and '_', starting with a letter, at most 64.</summary>
    public static bool IsWiki(string name) => name.Length is > 0 and <= 64 && char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_');

    /// <summary>True for a version: a code tree's directory name in the image (<c>php-1.44</c>).</summary>
    public static bool IsVersion(string version) => version.Length is > 0 and <= 64 && version[0] != '.' && version.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    /// <summary>The same map with <paramref name="wikis"/> set to <paramref name="version"/>.</summary>
    public WikiVersions With(IEnumerable<string> wikis, string version)
    {
        var map = new SortedDictionary<string, string>(_map, StringComparer.Ordinal);
        foreach (var wiki in wikis)
        {
            map[wiki] = version;
        }

        var changed = new WikiVersions(map, string.Empty);
        return new WikiVersions(map, changed.Write());
    }

    /// <summary>The line a wiki is on in the text this was read from (1 when not found).</summary>
    public int LineOf(string wiki) => LineOf(_text, wiki);

    /// <summary>The file's text: one wiki per line, sorted, tab-indented, with a final newline.</summary>
    public string Write()
    {
        var text = new StringBuilder("{\n");
        var i = 0;
        foreach (var (wiki, version) in _map)
        {
            text.Append('\t').Append(JsonSerializer.Serialize(wiki)).Append(": ").Append(JsonSerializer.Serialize(version)).Append(++i < _map.Count ? ",\n" : "\n");
        }

        return text.Append("}\n").ToString();
    }

    private static int LineOf(string text, string key, bool last = false)
    {
        var quoted = JsonSerializer.Serialize(key);
        // The key as written may escape differently (\u001b for \u001B): then it is found ignoring case.
        var at = last ? text.LastIndexOf(quoted, StringComparison.Ordinal) : text.IndexOf(quoted, StringComparison.Ordinal);
        if (at < 0)
        {
            at = last ? text.LastIndexOf(quoted, StringComparison.OrdinalIgnoreCase) : text.IndexOf(quoted, StringComparison.OrdinalIgnoreCase);
        }

        return at < 0 ? 1 : text.AsSpan(0, at).Count('\n') + 1;
    }
}
