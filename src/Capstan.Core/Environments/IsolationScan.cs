using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Environments;

/// <summary>Something of production's an environment must not carry: an endpoint of a backend, or a secret value.</summary>
/// <param name="Text">The text to look for (never printed when <paramref name="Secret"/>).</param>
/// <param name="What">What it is, as a report names it: <c>memcached endpoint 10.64.0.80:11211</c>, <c>secret tls.key</c>.</param>
/// <param name="Declared">Where production declares it.</param>
/// <param name="Secret">A secret value: matched anywhere, and never shown.</param>
public sealed record ProductionNeedle(string Text, string What, SourceLocation Declared, bool Secret);

/// <summary>One place an environment's object carries something of production's.</summary>
public sealed record IsolationHit(string Object, string Key, ProductionNeedle Needle)
{
    /// <summary>The file and line of the value that carried it into the environment, when one is found.</summary>
    public SourceLocation? CarriedBy { get; init; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Object} {Key}: production's {Needle.What} (declared at {Needle.Declared}){(CarriedBy is { } at ? $", carried by {at}" : ", rendered by capstan from the repo")}";
}

/// <summary>
/// The proof that an environment is isolated: every string of every object it renders (ConfigMap data, Secret data
/// decoded, env values, args, mesh config) is searched for production's endpoints and secret values. An endpoint counts
/// as a whole name (<c>10.64.0.8</c> is not found in <c>10.64.0.80</c>); a secret counts anywhere.
/// </summary>
public static class IsolationScan
{
    /// <summary>Every hit in one object (its JSON as the API server stores it: Secret data base64-encoded).</summary>
    public static IEnumerable<IsolationHit> Scan(string objectName, JsonObject obj, IReadOnlyList<ProductionNeedle> needles)
    {
        var isSecret = obj["kind"]?.GetValue<string>() == "Secret";
        var hits = new List<IsolationHit>();
        void Walk(JsonNode? node, string path)
        {
            switch (node)
            {
                case JsonObject map:
                    foreach (var (key, value) in map)
                    {
                        // Names of managed fields and labels are no channel to a backend; status is the cluster's.
                        if (path.Length == 0 && key is "status" || key == "managedFields")
                        {
                            continue;
                        }

                        Walk(value, path.Length == 0 ? key : path == "data" || path == "stringData" ? $"{path}[{key}]" : $"{path}.{key}");
                    }

                    break;
                case JsonArray list:
                    for (var i = 0; i < list.Count; i++)
                    {
                        Walk(list[i], $"{path}[{i}]");
                    }

                    break;
                case JsonValue value when value.TryGetValue<string>(out var text):
                    if (isSecret && path.StartsWith("data[", StringComparison.Ordinal))
                    {
                        text = Decode(text);
                    }

                    foreach (var needle in needles.Where(n => Contains(text, n)))
                    {
                        hits.Add(new IsolationHit(objectName, path, needle));
                    }

                    break;
            }
        }

        Walk(obj, string.Empty);
        return hits;
    }

    /// <summary>True when <paramref name="text"/> carries the needle: a secret anywhere, an endpoint as a whole name.</summary>
    public static bool Contains(string text, ProductionNeedle needle)
    {
        if (needle.Secret)
        {
            return text.Contains(needle.Text, StringComparison.Ordinal);
        }

        for (var at = text.IndexOf(needle.Text, StringComparison.Ordinal); at >= 0; at = text.IndexOf(needle.Text, at + 1, StringComparison.Ordinal))
        {
            var end = at + needle.Text.Length;
            var before = at == 0 ? ' ' : text[at - 1];
            var continuesBefore = char.IsAsciiLetterOrDigit(before) || before is '-' or '.' or '_';
            var continuesAfter = end < text.Length
                && (char.IsAsciiLetterOrDigit(text[end]) || text[end] is '-' or '_'
                    || (text[end] == '.' && end + 1 < text.Length && char.IsAsciiLetterOrDigit(text[end + 1])));
            if (!continuesBefore && !continuesAfter)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The first scalar of a values tree that carries the needle: where it entered the environment.</summary>
    public static SourceLocation? Carrier(ValueNode? tree, ProductionNeedle needle) => tree switch
    {
        ValueScalar scalar when Contains(scalar.Text, needle) => scalar.Location,
        ValueMap map => map.Entries.Select(e => Carrier(e.Value, needle)).FirstOrDefault(l => l is not null),
        ValueList list => list.Items.Select(i => Carrier(i, needle)).FirstOrDefault(l => l is not null),
        _ => null,
    };

    /// <summary>The first line of a file that carries the needle, as a location.</summary>
    public static SourceLocation? Carrier(string path, string text, ProductionNeedle needle)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (Contains(lines[i], needle))
            {
                return new SourceLocation(path, i + 1, 1);
            }
        }

        return null;
    }

    /// <summary>
    /// Production's secret values as needles: every leaf of its <c>secrets</c> tree, and the long literals inside one
    /// (a quoted password in a settings file, the base64 body of a key), so a copied file with one line changed is
    /// still caught. Short values (under 12 characters) are left out: they are no secret worth the name and would
    /// match by chance.
    /// </summary>
    public static IEnumerable<ProductionNeedle> SecretNeedles(ValueNode? secrets, string path = "secrets")
    {
        switch (secrets)
        {
            case ValueMap map:
                foreach (var entry in map.Entries)
                {
                    foreach (var needle in SecretNeedles(entry.Value, $"{path}.{entry.Key}"))
                    {
                        yield return needle;
                    }
                }

                break;
            case ValueList list:
                for (var i = 0; i < list.Items.Count; i++)
                {
                    foreach (var needle in SecretNeedles(list.Items[i], $"{path}[{i}]"))
                    {
                        yield return needle;
                    }
                }

                break;
            case ValueScalar { IsNull: false } scalar when scalar.Text.Trim().Length >= 12:
                yield return new ProductionNeedle(scalar.Text.Trim(), $"secret {path}", scalar.Location, Secret: true);
                foreach (var literal in Literals(scalar.Text).Where(l => l != scalar.Text.Trim()))
                {
                    yield return new ProductionNeedle(literal, $"secret value inside {path}", scalar.Location, Secret: true);
                }

                break;
        }
    }

    /// <summary>Quoted strings and base64 lines of at least 12 characters.</summary>
    private static IEnumerable<string> Literals(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.Length >= 40 && trimmed.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '='))
            {
                yield return trimmed;
            }

            foreach (var quote in new[] { '\'', '"' })
            {
                for (var start = trimmed.IndexOf(quote); start >= 0;)
                {
                    var end = trimmed.IndexOf(quote, start + 1);
                    if (end < 0)
                    {
                        break;
                    }

                    if (end - start - 1 >= 12)
                    {
                        yield return trimmed[(start + 1)..end];
                    }

                    start = trimmed.IndexOf(quote, end + 1);
                }
            }
        }
    }

    private static string Decode(string base64)
    {
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            return base64;
        }
    }
}
