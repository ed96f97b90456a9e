using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Environments;

/// <summary>One value that differs between an environment and production, with where each side set it.</summary>
public sealed record ValueDifference(string Path, string? Environment, SourceLocation? EnvironmentSetBy, string? Production, SourceLocation? ProductionSetBy);

/// <summary>Compares two layered values trees key by key (leaves: scalars and whole lists); secrets are left out.</summary>
public static class ValuesDrift
{
    /// <summary>The differing keys, in path order.</summary>
    public static IReadOnlyList<ValueDifference> Compare(ValueMap environment, ValueMap production)
    {
        var env = new SortedDictionary<string, (string Text, SourceLocation At)>(StringComparer.Ordinal);
        var prod = new SortedDictionary<string, (string Text, SourceLocation At)>(StringComparer.Ordinal);
        Flatten(environment, string.Empty, env);
        Flatten(production, string.Empty, prod);
        var differences = new List<ValueDifference>();
        // Secrets are never compared: equal or not would tell something about production's.
        foreach (var path in env.Keys.Union(prod.Keys).Where(p => p != "secrets" && !p.StartsWith("secrets.", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var e = env.TryGetValue(path, out var ev) ? ev : ((string Text, SourceLocation At)?)null;
            var p = prod.TryGetValue(path, out var pv) ? pv : ((string Text, SourceLocation At)?)null;
            if (e?.Text == p?.Text)
            {
                continue;
            }

            differences.Add(new ValueDifference(path, e?.Text, e?.At, p?.Text, p?.At));
        }

        return differences;
    }

    private static void Flatten(ValueNode node, string path, IDictionary<string, (string Text, SourceLocation At)> into)
    {
        switch (node)
        {
            case ValueMap map:
                foreach (var entry in map.Entries)
                {
                    Flatten(entry.Value, path.Length == 0 ? entry.Key : $"{path}.{entry.Key}", into);
                }

                break;
            case ValueScalar scalar:
                into[path] = (scalar.IsNull ? "null" : scalar.Text, scalar.Location);
                break;
            default:
                into[path] = (Text(node), node.Location);
                break;
        }
    }

    private static string Text(ValueNode node) => node switch
    {
        ValueScalar s => s.IsNull ? "null" : s.Text,
        ValueList l => "[" + string.Join(", ", l.Items.Select(Text)) + "]",
        ValueMap m => "{" + string.Join(", ", m.Entries.Select(e => $"{e.Key}: {Text(e.Value)}")) + "}",
        _ => node.Describe(),
    };
}
