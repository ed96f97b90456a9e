using System.Text;

namespace Capstan.Core.Planning;

/// <summary>A unified diff of two texts (longest common subsequence of lines, three lines of context).</summary>
public static class UnifiedDiff
{
    /// <summary>The diff, or an empty string when the texts are equal.</summary>
    public static string Create(string before, string after, string beforeName, string afterName, int context = 3)
    {
        if (before == after)
        {
            return string.Empty;
        }

        var a = Lines(before);
        var b = Lines(after);
        var ops = Diff(a, b);
        var sb = new StringBuilder();
        sb.Append("--- ").Append(beforeName).Append('\n').Append("+++ ").Append(afterName).Append('\n');
        var i = 0;
        while (i < ops.Count)
        {
            if (ops[i].Kind == ' ')
            {
                i++;
                continue;
            }

            var start = Math.Max(0, i - context);
            var end = i;
            var lastChange = i;
            while (end < ops.Count && (ops[end].Kind != ' ' || end - lastChange <= context * 2))
            {
                if (ops[end].Kind != ' ')
                {
                    lastChange = end;
                }

                end++;
            }

            end = Math.Min(ops.Count, lastChange + context + 1);
            var aStart = ops[start].A;
            var bStart = ops[start].B;
            var aCount = ops.Skip(start).Take(end - start).Count(o => o.Kind != '+');
            var bCount = ops.Skip(start).Take(end - start).Count(o => o.Kind != '-');
            sb.Append("@@ -").Append(aStart + 1).Append(',').Append(aCount).Append(" +").Append(bStart + 1).Append(',').Append(bCount).Append(" @@\n");
            for (var k = start; k < end; k++)
            {
                sb.Append(ops[k].Kind).Append(ops[k].Text).Append('\n');
            }

            i = end;
        }

        return sb.ToString();
    }

    private static string[] Lines(string text) => text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n');

    private static List<(char Kind, string Text, int A, int B)> Diff(string[] a, string[] b)
    {
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
        {
            for (var j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        var ops = new List<(char, string, int, int)>();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y])
            {
                ops.Add((' ', a[x], x, y));
                x++;
                y++;
            }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                ops.Add(('-', a[x], x, y));
                x++;
            }
            else
            {
                ops.Add(('+', b[y], x, y));
                y++;
            }
        }

        return ops;
    }
}
