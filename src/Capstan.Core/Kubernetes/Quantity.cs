using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// A Kubernetes resource quantity (<c>500m</c>, <c>1Gi</c>, <c>1e3</c>) and its canonical text, as the API server
/// stores it: no precision lost, no fractional digits, the largest suffix that keeps the number whole, in the format
/// (binary, decimal or exponent) the value was written in. So <c>1024Mi</c> reads back as <c>1Gi</c>, <c>0.5</c> as
/// <c>500m</c>, <c>1.5Gi</c> as <c>1536Mi</c>. Precision finer than a nano unit is rounded up, as the server does.
/// </summary>
public readonly partial record struct Quantity
{
    private static readonly BigInteger Nano = BigInteger.Pow(10, 9);
    private static readonly string[] BinarySuffixes = [string.Empty, "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

    private Quantity(BigInteger nanos, QuantityFormat format)
    {
        Nanos = nanos;
        Format = format;
    }

    /// <summary>The value in units of 10⁻⁹.</summary>
    public BigInteger Nanos { get; }

    /// <summary>How the value was written, which decides how it is written back.</summary>
    public QuantityFormat Format { get; }

    /// <summary>The message of the real server for text that is not a quantity.</summary>
    public const string SyntaxMessage = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

    /// <summary>A quantity of so many 10⁻⁹ units, written in the given form (a sum of quantities, for example).</summary>
    public static Quantity FromNanos(BigInteger nanos, QuantityFormat format) => new(nanos, format);

    /// <summary>Parses a quantity; false for text that is not one.</summary>
    public static bool TryParse(string text, out Quantity quantity)
    {
        quantity = default;
        var match = Syntax().Match(text);
        if (!match.Success)
        {
            return false;
        }

        var number = match.Groups["number"].Value;
        var suffix = match.Groups["suffix"].Value;
        if (number.Count(c => c == '.') > 1 || number.Trim('+', '-') is "" or ".")
        {
            return false;
        }

        int base10Exponent;
        var binaryPower = 0;
        QuantityFormat format;
        switch (suffix)
        {
            case "Ki" or "Mi" or "Gi" or "Ti" or "Pi" or "Ei":
                format = QuantityFormat.BinarySI;
                binaryPower = 10 * Array.IndexOf(BinarySuffixes, suffix);
                base10Exponent = 0;
                break;
            case "":
                format = QuantityFormat.DecimalSI;
                base10Exponent = 0;
                break;
            case "n" or "u" or "m" or "k" or "M" or "G" or "T" or "P" or "E":
                format = QuantityFormat.DecimalSI;
                base10Exponent = suffix switch { "n" => -9, "u" => -6, "m" => -3, "k" => 3, "M" => 6, "G" => 9, "T" => 12, "P" => 15, _ => 18 };
                break;
            default:
                if (suffix[0] is not ('e' or 'E') || !int.TryParse(suffix.AsSpan(1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out base10Exponent)
                    || Math.Abs(base10Exponent) > 1000)
                {
                    return false;
                }

                format = QuantityFormat.DecimalExponent;
                break;
        }

        var negative = number.StartsWith('-');
        var digits = number.TrimStart('+', '-');
        var point = digits.IndexOf('.', StringComparison.Ordinal);
        var fraction = point < 0 ? 0 : digits.Length - point - 1;
        var mantissa = BigInteger.Parse("0" + digits.Replace(".", string.Empty, StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture);

        // value = mantissa × 10^(base10Exponent - fraction) × 2^binaryPower, in nanos: × 10^9.
        var scale = base10Exponent - fraction + 9;
        var numerator = mantissa * BigInteger.Pow(2, binaryPower);
        BigInteger nanos;
        if (scale >= 0)
        {
            nanos = numerator * BigInteger.Pow(10, scale);
        }
        else
        {
            var divisor = BigInteger.Pow(10, -scale);
            nanos = BigInteger.DivRem(numerator, divisor, out var remainder);
            if (!remainder.IsZero)
            {
                nanos += 1; // finer than a nano unit: rounded up (away from zero), as the server does
            }
        }

        quantity = new Quantity(negative ? -nanos : nanos, format);
        return true;
    }

    /// <summary>The canonical text of a quantity given as text; null when it is not a quantity.</summary>
    public static string? Canonicalize(string text) => TryParse(text, out var q) ? q.ToString() : null;

    /// <inheritdoc/>
    public override string ToString()
    {
        if (Nanos.IsZero)
        {
            return "0";
        }

        var sign = Nanos.Sign < 0 ? "-" : string.Empty;
        var magnitude = BigInteger.Abs(Nanos);
        if (Format == QuantityFormat.BinarySI && magnitude >= 1024 * Nano && (magnitude % Nano).IsZero)
        {
            var bytes = magnitude / Nano;
            var power = 0;
            while (power < BinarySuffixes.Length - 1 && (bytes % 1024).IsZero)
            {
                bytes /= 1024;
                power++;
            }

            return sign + bytes.ToString(CultureInfo.InvariantCulture) + BinarySuffixes[power];
        }

        var exponent = -9;
        while (exponent < 18 && (magnitude % 1000).IsZero)
        {
            magnitude /= 1000;
            exponent += 3;
        }

        var suffix = Format == QuantityFormat.DecimalExponent
            ? exponent == 0 ? string.Empty : "e" + exponent.ToString(CultureInfo.InvariantCulture)
            : exponent switch { -9 => "n", -6 => "u", -3 => "m", 0 => string.Empty, 3 => "k", 6 => "M", 9 => "G", 12 => "T", 15 => "P", _ => "E" };
        return sign + magnitude.ToString(CultureInfo.InvariantCulture) + suffix;
    }

    [GeneratedRegex(@"^(?<number>[+-]?[0-9.]+)(?<suffix>[eEinumkKMGTP]*[-+]?[0-9]*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Syntax();
}

/// <summary>How a quantity is written: 1024-based suffixes, 1000-based suffixes, or an exponent.</summary>
public enum QuantityFormat
{
    /// <summary>Ki, Mi, Gi, Ti, Pi, Ei.</summary>
    BinarySI,

    /// <summary>n, u, m, (none), k, M, G, T, P, E.</summary>
    DecimalSI,

    /// <summary>e3, E-3 and so on.</summary>
    DecimalExponent,
}
