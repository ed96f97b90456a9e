using System.Globalization;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.Yaml;

/// <summary>
/// A YAML value read from the deployment repo that remembers where it came from, so that an error found
/// long after loading (during layering or rendering) still names the file, line and column.
/// </summary>
public abstract class ValueNode
{
    private protected ValueNode(SourceLocation location) => Location = location;

    /// <summary>Where the value starts.</summary>
    public SourceLocation Location { get; }

    /// <summary>A short name of the node's shape for error messages: "a mapping", "a list", "a string".</summary>
    public abstract string Describe();
}

/// <summary>A mapping with its keys in file order.</summary>
public sealed class ValueMap : ValueNode
{
    private readonly Dictionary<string, MapEntry> _byKey;

    /// <summary>Creates a mapping; keys must be unique (the reader reports duplicates before this).</summary>
    public ValueMap(IReadOnlyList<MapEntry> entries, SourceLocation location)
        : base(location)
    {
        Entries = entries;
        _byKey = new Dictionary<string, MapEntry>(entries.Count, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            _byKey[entry.Key] = entry;
        }
    }

    /// <summary>The entries in file order.</summary>
    public IReadOnlyList<MapEntry> Entries { get; }

    /// <summary>Looks a key up.</summary>
    public bool TryGet(string key, out MapEntry entry) => _byKey.TryGetValue(key, out entry!);

    /// <summary>The value of a key, or null when absent.</summary>
    public ValueNode? this[string key] => _byKey.TryGetValue(key, out var e) ? e.Value : null;

    /// <inheritdoc/>
    public override string Describe() => "a mapping";
}

/// <summary>One key of a mapping with the place the key itself was written.</summary>
public sealed record MapEntry(string Key, SourceLocation KeyLocation, ValueNode Value);

/// <summary>A sequence.</summary>
public sealed class ValueList : ValueNode
{
    /// <summary>Creates a list.</summary>
    public ValueList(IReadOnlyList<ValueNode> items, SourceLocation location)
        : base(location) => Items = items;

    /// <summary>The items in file order.</summary>
    public IReadOnlyList<ValueNode> Items { get; }

    /// <inheritdoc/>
    public override string Describe() => "a list";
}

/// <summary>
/// A scalar. Plain scalars are typed by the YAML 1.2 core schema (null, booleans, integers, floats);
/// quoted and block scalars are always strings.
/// </summary>
public sealed class ValueScalar : ValueNode
{
    /// <summary>Creates a scalar.</summary>
    public ValueScalar(string text, bool isPlain, SourceLocation location)
        : base(location)
    {
        Text = text;
        IsPlain = isPlain;
        Type = isPlain ? ScalarTyping.Classify(text) : ScalarType.String;
    }

    /// <summary>The text as written (after YAML unescaping).</summary>
    public string Text { get; }

    /// <summary>True when the scalar was written without quotes or block style.</summary>
    public bool IsPlain { get; }

    /// <summary>The type the core schema gives the scalar.</summary>
    public ScalarType Type { get; }

    /// <summary>True for <c>~</c>, <c>null</c> and an empty plain value.</summary>
    public bool IsNull => Type == ScalarType.Null;

    /// <inheritdoc/>
    public override string Describe() => Type switch
    {
        ScalarType.Null => "null",
        ScalarType.Bool => $"the boolean {Text}",
        ScalarType.Int => $"the number {Text}",
        ScalarType.Float => $"the number {Text}",
        _ => $"the string \"{Text}\"",
    };

    /// <summary>The boolean value, when the scalar is one.</summary>
    public bool? AsBool() => Type == ScalarType.Bool ? string.Equals(Text, "true", StringComparison.OrdinalIgnoreCase) : null;

    /// <summary>The integer value, when the scalar is one that fits in 64 bits.</summary>
    public long? AsInt() => Type == ScalarType.Int ? ScalarTyping.ParseInt(Text) : null;
}

/// <summary>The types of the YAML 1.2 core schema.</summary>
public enum ScalarType
{
    /// <summary>A string.</summary>
    String,

    /// <summary>null, ~ or empty.</summary>
    Null,

    /// <summary>true or false.</summary>
    Bool,

    /// <summary>An integer.</summary>
    Int,

    /// <summary>A floating-point number.</summary>
    Float,
}

/// <summary>Resolves plain scalars by the YAML 1.2 core schema.</summary>
public static class ScalarTyping
{
    /// <summary>The core-schema type of a plain scalar.</summary>
    public static ScalarType Classify(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return ScalarType.Null;
            case "true" or "True" or "TRUE" or "false" or "False" or "FALSE":
                return ScalarType.Bool;
            case ".inf" or ".Inf" or ".INF" or "+.inf" or "+.Inf" or "+.INF" or "-.inf" or "-.Inf" or "-.INF" or ".nan" or ".NaN" or ".NAN":
                return ScalarType.Float;
        }

        if (ParseInt(text) is not null)
        {
            return ScalarType.Int;
        }

        return IsFloat(text) ? ScalarType.Float : ScalarType.String;
    }

    /// <summary>Parses a core-schema integer (decimal, 0o octal, 0x hex); null when it is not one.</summary>
    public static long? ParseInt(string text)
    {
        if (text.Length == 0)
        {
            return null;
        }

        if (text.StartsWith("0x", StringComparison.Ordinal) && text.Length > 2)
        {
            return long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex) ? hex : null;
        }

        if (text.StartsWith("0o", StringComparison.Ordinal) && text.Length > 2)
        {
            try
            {
                return Convert.ToInt64(text[2..], 8);
            }
            catch (FormatException)
            {
                return null;
            }
        }

        var digits = text[0] is '-' or '+' ? text.AsSpan(1) : text.AsSpan();
        if (digits.IsEmpty)
        {
            return null;
        }

        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return null;
            }
        }

        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    private static bool IsFloat(string text)
    {
        // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
        var i = 0;
        if (i < text.Length && text[i] is '-' or '+')
        {
            i++;
        }

        var intDigits = CountDigits(text, ref i);
        var fracDigits = 0;
        if (i < text.Length && text[i] == '.')
        {
            i++;
            fracDigits = CountDigits(text, ref i);
        }

        if (intDigits == 0 && fracDigits == 0)
        {
            return false;
        }

        if (i < text.Length && text[i] is 'e' or 'E')
        {
            i++;
            if (i < text.Length && text[i] is '-' or '+')
            {
                i++;
            }

            if (CountDigits(text, ref i) == 0)
            {
                return false;
            }
        }

        return i == text.Length;
    }

    private static int CountDigits(string text, ref int i)
    {
        var start = i;
        while (i < text.Length && text[i] is >= '0' and <= '9')
        {
            i++;
        }

        return i - start;
    }
}
