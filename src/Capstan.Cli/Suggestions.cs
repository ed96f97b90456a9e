namespace Capstan.Cli;

/// <summary>"Did you mean …?": the known word nearest to a mistyped one, by edit distance.</summary>
internal static class Suggestions
{
    /// <summary>
    /// The candidate nearest to <paramref name="typed"/> when it is close enough to be a typo (at most a third of its
    /// letters edited, adjacent swaps counting once) or the only candidate it starts; null when nothing is.
    /// </summary>
    public static string? Nearest(string typed, IEnumerable<string> candidates)
    {
        var list = candidates.Distinct(StringComparer.Ordinal).ToList();
        var best = list.Select(c => (Word: c, Distance: Distance(typed, c)))
            .Where(c => c.Distance <= Math.Max(1, typed.TrimStart('-').Length / 3))
            .OrderBy(c => c.Distance).ThenBy(c => c.Word, StringComparer.Ordinal)
            .FirstOrDefault();
        if (best.Word is not null)
        {
            return best.Word;
        }

        var prefixed = list.Where(c => typed.TrimStart('-').Length >= 2 && c.StartsWith(typed, StringComparison.Ordinal)).ToList();
        return prefixed.Count == 1 ? prefixed[0] : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
