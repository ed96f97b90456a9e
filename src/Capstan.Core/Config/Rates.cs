using System.Globalization;
using System.Text.RegularExpressions;

namespace Capstan.Core.Config;

/// <summary>Data rates as people write them: <c>125MB/s</c>, <c>1Gbit/s</c>, <c>10Gbps</c>, <c>1GiB/s</c> or plain bytes per second.</summary>
public static partial class Rates
{
    /// <summary>The rate in bytes per second, or null when the text is not a positive rate.</summary>
    public static long? TryParse(string text)
    {
        var m = RateText().Match(text.Trim());
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            return null;
        }

        var unit = m.Groups[2].Value;
        var scale = unit.Length == 0 ? 1 : Math.Pow(unit.EndsWith('i') ? 1024 : 1000, "kKMGT".IndexOf(unit[0], StringComparison.Ordinal) switch { 0 or 1 => 1, 2 => 2, 3 => 3, _ => 4 });
        var bits = m.Groups[3].Value is "bit" or "bps";
        var bytes = (long)(value * scale / (bits ? 8 : 1));
        return bytes > 0 ? bytes : null;
    }

    /// <summary>How a rate reads back: <c>1.25 GB/s</c>.</summary>
    public static string Describe(double bytesPerSecond) => bytesPerSecond switch
    {
        >= 1e9 => (bytesPerSecond / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + " GB/s",
        >= 1e6 => (bytesPerSecond / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + " MB/s",
        _ => (bytesPerSecond / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + " kB/s",
    };

    [GeneratedRegex("^([0-9]+(?:\\.[0-9]+)?)\\s*(|[kKMGT]i?)(B|bit|bps)?(/s)?$")]
    private static partial Regex RateText();
}
