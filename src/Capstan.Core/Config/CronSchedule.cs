using System.Globalization;

namespace Capstan.Core.Config;

/// <summary>
/// A standard five-field cron schedule (minute hour day-of-month month day-of-week), as the Kubernetes
/// CronJob controller accepts it, including the <c>@hourly</c>-style macros.
/// </summary>
public sealed class CronSchedule
{
    private static readonly (string Name, int Min, int Max, string[]? Names)[] Fields =
    [
        ("minute", 0, 59, null),
        ("hour", 0, 23, null),
        ("day of month", 1, 31, null),
        ("month", 1, 12, ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]),
        ("day of week", 0, 7, ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]),
    ];

    private static readonly Dictionary<string, string> Macros = new(StringComparer.Ordinal)
    {
        ["@yearly"] = "0 0 1 1 *",
        ["@annually"] = "0 0 1 1 *",
        ["@monthly"] = "0 0 1 * *",
        ["@weekly"] = "0 0 * * 0",
        ["@daily"] = "0 0 * * *",
        ["@midnight"] = "0 0 * * *",
        ["@hourly"] = "0 * * * *",
    };

    private readonly bool[][] _allowed;
    private readonly bool _domRestricted;
    private readonly bool _dowRestricted;

    private CronSchedule(bool[][] allowed, bool domRestricted, bool dowRestricted)
    {
        _allowed = allowed;
        _domRestricted = domRestricted;
        _dowRestricted = dowRestricted;
    }

    /// <summary>Null when the schedule is valid, else what is wrong with it.</summary>
    public static string? Check(string text) => TryParse(text, out _, out var error) ? null : error;

    /// <summary>Parses a schedule.</summary>
    public static bool TryParse(string text, out CronSchedule schedule, out string error)
    {
        schedule = null!;
        var expanded = Macros.TryGetValue(text.Trim(), out var macro) ? macro : text;
        var parts = expanded.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 5)
        {
            error = $"expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @hourly, found {parts.Length}";
            return false;
        }

        var allowed = new bool[5][];
        for (var i = 0; i < 5; i++)
        {
            var (name, min, max, names) = Fields[i];
            allowed[i] = new bool[max + 1];
            foreach (var term in parts[i].Split(','))
            {
                if (!TryTerm(term, min, max, names, allowed[i]))
                {
                    error = $"invalid {name} field '{parts[i]}' (allowed {min}-{max}{(names is null ? string.Empty : " or names")}, '*', ranges, lists and steps)";
                    return false;
                }
            }
        }

        // Sunday is both 0 and 7.
        allowed[4][0] |= allowed[4][7];
        schedule = new CronSchedule(allowed, parts[2] != "*", parts[4] != "*");
        error = string.Empty;
        return true;
    }

    /// <summary>The first minute strictly after <paramref name="after"/> (UTC) that the schedule fires at.</summary>
    public DateTimeOffset NextAfter(DateTimeOffset after)
    {
        var t = new DateTimeOffset(after.Year, after.Month, after.Day, after.Hour, after.Minute, 0, TimeSpan.Zero).AddMinutes(1);
        var limit = t.AddYears(5);
        while (t < limit)
        {
            if (!_allowed[3][t.Month])
            {
                t = new DateTimeOffset(t.Year, t.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
                continue;
            }

            if (!DayMatches(t))
            {
                t = new DateTimeOffset(t.Year, t.Month, t.Day, 0, 0, 0, TimeSpan.Zero).AddDays(1);
                continue;
            }

            if (!_allowed[1][t.Hour])
            {
                t = new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
                continue;
            }

            if (!_allowed[0][t.Minute])
            {
                t = t.AddMinutes(1);
                continue;
            }

            return t;
        }

        return DateTimeOffset.MaxValue;
    }

    private bool DayMatches(DateTimeOffset t)
    {
        var dom = _allowed[2][t.Day];
        var dow = _allowed[4][(int)t.DayOfWeek];

        // As in cron: when both day fields are restricted, either may match.
        return _domRestricted && _dowRestricted ? dom || dow : dom && dow;
    }

    private static bool TryTerm(string term, int min, int max, string[]? names, bool[] allowed)
    {
        var step = 1;
        var slash = term.IndexOf('/', StringComparison.Ordinal);
        var range = term;
        if (slash >= 0)
        {
            if (!int.TryParse(term.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1 || step > max)
            {
                return false;
            }

            range = term[..slash];
        }

        int from, to;
        if (range == "*")
        {
            (from, to) = (min, max);
        }
        else
        {
            var dash = range.IndexOf('-', StringComparison.Ordinal);
            if (dash >= 0)
            {
                if (!TryValue(range[..dash], min, max, names, out from) || !TryValue(range[(dash + 1)..], min, max, names, out to) || to < from)
                {
                    return false;
                }
            }
            else
            {
                if (!TryValue(range, min, max, names, out from))
                {
                    return false;
                }

                to = slash >= 0 ? max : from;
            }
        }

        for (var v = from; v <= to; v += step)
        {
            allowed[v] = true;
        }

        return true;
    }

    private static bool TryValue(string text, int min, int max, string[]? names, out int value)
    {
        if (names is not null)
        {
            var index = Array.IndexOf(names, text.ToUpperInvariant());
            if (index >= 0)
            {
                value = index + min;
                return true;
            }
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
    }
}
