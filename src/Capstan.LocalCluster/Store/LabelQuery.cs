using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// A label selector as the API accepts it in <c>?labelSelector=</c>: equality (<c>a=b</c>, <c>a==b</c>, <c>a!=b</c>),
/// sets (<c>a in (x,y)</c>, <c>a notin (x)</c>) and existence (<c>a</c>, <c>!a</c>), comma-separated and all required.
/// </summary>
public sealed class LabelQuery
{
    private readonly List<Func<IReadOnlyDictionary<string, string>, bool>> _requirements = [];

    /// <summary>Matches everything.</summary>
    public static LabelQuery Everything { get; } = new();

    /// <summary>Parses a selector; throws <see cref="ApiError"/> (400) when it is malformed.</summary>
    public static LabelQuery Parse(string? text)
    {
        var query = new LabelQuery();
        if (string.IsNullOrWhiteSpace(text))
        {
            return query;
        }

        foreach (var term in SplitTerms(text))
        {
            var t = term.Trim();
            int i;
            if ((i = t.IndexOf(" notin ", StringComparison.Ordinal)) > 0)
            {
                var key = t[..i].Trim();
                var values = SetValues(t[(i + 7)..], text);
                query._requirements.Add(l => !l.TryGetValue(key, out var v) || !values.Contains(v));
            }
            else if ((i = t.IndexOf(" in ", StringComparison.Ordinal)) > 0)
            {
                var key = t[..i].Trim();
                var values = SetValues(t[(i + 4)..], text);
                query._requirements.Add(l => l.TryGetValue(key, out var v) && values.Contains(v));
            }
            else if ((i = t.IndexOf("!=", StringComparison.Ordinal)) > 0)
            {
                var (key, value) = (t[..i].Trim(), t[(i + 2)..].Trim());
                query._requirements.Add(l => !l.TryGetValue(key, out var v) || v != value);
            }
            else if ((i = t.IndexOf('=', StringComparison.Ordinal)) > 0)
            {
                var key = t[..i].Trim();
                var value = t[(i + (t.Length > i + 1 && t[i + 1] == '=' ? 2 : 1))..].Trim();
                query._requirements.Add(l => l.TryGetValue(key, out var v) && v == value);
            }
            else if (t.StartsWith('!'))
            {
                var key = t[1..].Trim();
                query._requirements.Add(l => !l.ContainsKey(key));
            }
            else if (t.Length > 0 && !t.Contains(' ', StringComparison.Ordinal))
            {
                query._requirements.Add(l => l.ContainsKey(t));
            }
            else
            {
                throw ApiError.BadRequest($"unable to parse requirement \"{t}\" of label selector \"{text}\"");
            }
        }

        return query;
    }

    /// <summary>A selector from an object's <c>matchLabels</c> and <c>matchExpressions</c>.</summary>
    public static LabelQuery FromSelector(JsonObject? selector)
    {
        var query = new LabelQuery();
        foreach (var (key, value) in selector?["matchLabels"] as JsonObject ?? [])
        {
            var expected = value?.GetValue<string>();
            query._requirements.Add(l => l.TryGetValue(key, out var v) && v == expected);
        }

        foreach (var expression in selector?["matchExpressions"] as JsonArray ?? [])
        {
            var key = expression!["key"]!.GetValue<string>();
            var values = (expression["values"] as JsonArray ?? []).Select(v => v!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
            Func<IReadOnlyDictionary<string, string>, bool> requirement = expression["operator"]?.GetValue<string>() switch
            {
                "In" => l => l.TryGetValue(key, out var v) && values.Contains(v),
                "NotIn" => l => !l.TryGetValue(key, out var v) || !values.Contains(v),
                "Exists" => l => l.ContainsKey(key),
                "DoesNotExist" => l => !l.ContainsKey(key),
                _ => _ => false,
            };
            query._requirements.Add(requirement);
        }

        return query;
    }

    /// <summary>True when the labels satisfy every requirement.</summary>
    public bool Matches(IReadOnlyDictionary<string, string> labels) => _requirements.TrueForAll(r => r(labels));

    /// <summary>True when the object's labels satisfy every requirement.</summary>
    public bool Matches(JsonObject obj) => Matches(Labels(obj));

    /// <summary>An object's labels.</summary>
    public static Dictionary<string, string> Labels(JsonObject obj)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in obj["metadata"]?["labels"] as JsonObject ?? [])
        {
            labels[key] = value?.ToString() ?? string.Empty;
        }

        return labels;
    }

    private static HashSet<string> SetValues(string text, string whole)
    {
        var t = text.Trim();
        if (!t.StartsWith('(') || !t.EndsWith(')'))
        {
            throw ApiError.BadRequest($"unable to parse label selector \"{whole}\": a set must be in parentheses");
        }

        return t[1..^1].Split(',').Select(v => v.Trim()).Where(v => v.Length > 0).ToHashSet(StringComparer.Ordinal);
    }

    private static IEnumerable<string> SplitTerms(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }

        yield return text[start..];
    }
}
