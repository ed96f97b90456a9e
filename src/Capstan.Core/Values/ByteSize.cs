using System.Globalization;

namespace Capstan.Core.Values;

/// <summary>Byte counts as people read them: 812 B, 3.4 KiB, 12.0 MiB, 1.25 GiB.</summary>
public static class ByteSize
{
    public static string Format(long bytes) => bytes switch
    {
        >= 1 << 30 => (bytes / (double)(1 << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1 << 20 => (bytes / (double)(1 << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1 << 10 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
