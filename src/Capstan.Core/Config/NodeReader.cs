using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// Reads typed values out of <see cref="ValueNode"/> trees, reporting every mismatch (wrong type, unknown key,
/// value out of range) as a diagnostic at the node's location. Readers return null on error so that loading
/// can go on and report the next problem too.
/// </summary>
public sealed class NodeReader(DiagnosticBag diagnostics)
{
    /// <summary>Where findings go.</summary>
    public DiagnosticBag Diagnostics { get; } = diagnostics;

    /// <summary>Reads a mapping and reports keys outside <paramref name="allowed"/>.</summary>
    public ValueMap? Map(ValueNode? node, string what, IReadOnlyCollection<string>? allowed = null)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueMap map)
        {
            Diagnostics.Error(node.Location, $"{what} must be a mapping, not {node.Describe()}");
            return null;
        }

        if (allowed is not null)
        {
            foreach (var entry in map.Entries)
            {
                if (!allowed.Contains(entry.Key))
                {
                    Diagnostics.Error(entry.KeyLocation, $"unknown key '{entry.Key}' in {what} (allowed: {string.Join(", ", allowed)})");
                }
            }
        }

        return map;
    }

    /// <summary>Reads a string; numbers and booleans are refused so that a typo does not pass silently.</summary>
    public string? String(ValueNode? node, string what, bool allowEmpty = false)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueScalar { Type: ScalarType.String } scalar)
        {
            Diagnostics.Error(node.Location, $"{what} must be a string, not {node.Describe()}");
            return null;
        }

        if (!allowEmpty && scalar.Text.Length == 0)
        {
            Diagnostics.Error(node.Location, $"{what} must not be empty");
            return null;
        }

        return scalar.Text;
    }

    /// <summary>Reads any scalar as text (strings, numbers, booleans): for values that end up as text anyway.</summary>
    public string? ScalarText(ValueNode? node, string what)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueScalar scalar || scalar.IsNull)
        {
            Diagnostics.Error(node.Location, $"{what} must be a string or number, not {node.Describe()}");
            return null;
        }

        return scalar.Text;
    }

    /// <summary>
    /// Reads an int-or-string as Kubernetes takes it for a count of pods: a whole number (<c>1</c>) or a percentage
    /// (<c>25%</c>); a number written as a string would be refused by the API server.
    /// </summary>
    public Kubernetes.IntOrString? CountOrPercent(ValueNode? node, string what)
    {
        if (node is null)
        {
            return null;
        }

        if (node is ValueScalar { Type: ScalarType.Int } number && number.AsInt() is { } value and >= 0 and <= int.MaxValue)
        {
            return (int)value;
        }

        if (node is ValueScalar { IsNull: false } text && text.Text.Length > 1 && text.Text[^1] == '%' && text.Text[..^1].All(char.IsAsciiDigit))
        {
            return text.Text;
        }

        Diagnostics.Error(node.Location, $"{what} must be a whole number of pods (1) or a percentage (25%), not {node.Describe()}");
        return null;
    }

    /// <summary>Reads an integer within a range.</summary>
    public int? Int(ValueNode? node, string what, int min = 0, int max = int.MaxValue)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueScalar { Type: ScalarType.Int } scalar || scalar.AsInt() is not { } value)
        {
            Diagnostics.Error(node.Location, $"{what} must be a whole number, not {node.Describe()}");
            return null;
        }

        if (value < min || value > max)
        {
            Diagnostics.Error(node.Location, $"{what} must be between {min} and {max}, not {value}");
            return null;
        }

        return (int)value;
    }

    /// <summary>Reads a decimal number within a range.</summary>
    public decimal? Decimal(ValueNode? node, string what, decimal min, decimal max)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueScalar { Type: ScalarType.Int or ScalarType.Float } scalar ||
            !decimal.TryParse(scalar.Text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            Diagnostics.Error(node.Location, $"{what} must be a number, not {node.Describe()}");
            return null;
        }

        if (value < min || value > max)
        {
            Diagnostics.Error(node.Location, $"{what} must be between {min} and {max}, not {scalar.Text}");
            return null;
        }

        return value;
    }

    /// <summary>Reads a boolean (true or false; "yes" and quoted strings are refused).</summary>
    public bool? Bool(ValueNode? node, string what)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueScalar { Type: ScalarType.Bool } scalar)
        {
            Diagnostics.Error(node.Location, $"{what} must be true or false, not {node.Describe()}");
            return null;
        }

        return scalar.AsBool();
    }

    /// <summary>Reads one of a fixed set of words.</summary>
    public T? Enum<T>(ValueNode? node, string what, IReadOnlyList<(string Word, T Value)> choices)
        where T : struct
    {
        var text = String(node, what);
        if (text is null)
        {
            return null;
        }

        foreach (var (word, value) in choices)
        {
            if (word == text)
            {
                return value;
            }
        }

        Diagnostics.Error(node!.Location, $"{what} must be one of {string.Join(", ", choices.Select(c => c.Word))}, not \"{text}\"");
        return null;
    }

    /// <summary>Reads a list of strings; a single string is accepted where <paramref name="allowSingle"/>.</summary>
    public IReadOnlyList<string>? StringList(ValueNode? node, string what, bool allowSingle = false)
    {
        if (node is null)
        {
            return null;
        }

        if (allowSingle && node is ValueScalar { Type: ScalarType.String } single)
        {
            return [single.Text];
        }

        if (node is not ValueList list)
        {
            Diagnostics.Error(node.Location, $"{what} must be a list of strings, not {node.Describe()}");
            return null;
        }

        var result = new List<string>(list.Items.Count);
        foreach (var item in list.Items)
        {
            if (String(item, $"each item of {what}") is { } text)
            {
                result.Add(text);
            }
        }

        return result;
    }

    /// <summary>Reads a list of scalars as text (a command line: numbers are fine as arguments).</summary>
    public IReadOnlyList<string>? ScalarList(ValueNode? node, string what)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not ValueList list)
        {
            Diagnostics.Error(node.Location, $"{what} must be a list, not {node.Describe()}");
            return null;
        }

        var result = new List<string>(list.Items.Count);
        foreach (var item in list.Items)
        {
            if (ScalarText(item, $"each item of {what}") is { } text)
            {
                result.Add(text);
            }
        }

        return result;
    }

    /// <summary>Reports a required key that is missing from a mapping.</summary>
    public void Missing(ValueMap map, string key, string what) =>
        Diagnostics.Error(map.Location, $"{what} is missing the required key '{key}'");
}
