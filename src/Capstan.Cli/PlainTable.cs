using System.Text;
using Capstan.Core.Diagnostics;

namespace Capstan.Cli;

/// <summary>
/// A table printed as kubectl prints its own: upper-case headings, columns padded with spaces, no borders, so the
/// output reads well on a terminal and stays easy to grep and cut in a pipe.
/// </summary>
internal sealed class PlainTable(params string[] headings)
{
    private readonly List<string[]> _rows = [];

    /// <summary>Adds a row; a cell's control characters (text from a store may hold them) are shown escaped.</summary>
    public void Add(params string[] cells) => _rows.Add([.. cells.Select(FreeText.Printable)]);

    public override string ToString()
    {
        var widths = headings.Select(h => h.Length).ToArray();
        foreach (var row in _rows)
        {
            for (var i = 0; i < widths.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        var sb = new StringBuilder();
        AppendRow(sb, headings, widths);
        foreach (var row in _rows)
        {
            AppendRow(sb, row, widths);
        }

        return sb.ToString();
    }

    private static void AppendRow(StringBuilder sb, string[] cells, int[] widths)
    {
        for (var i = 0; i < cells.Length; i++)
        {
            if (i == cells.Length - 1)
            {
                sb.Append(cells[i]);
            }
            else
            {
                sb.Append(cells[i].PadRight(widths[i] + 3));
            }
        }

        sb.Append('\n');
    }
}
