using System.Globalization;
using System.Text;

namespace Capstan.Core.Diagnostics;

/// <summary>
/// Free text that people type and others read on a terminal (an owner, a description, a reason, a link): refused when
/// it holds a control character or a bidirectional override, which could fake table rows or send escape sequences to
/// whoever lists it, and shown with such characters escaped when it comes from a store that an older version (or
/// another tool) wrote.
/// </summary>
public static class FreeText
{
    /// <summary>Refuses <paramref name="value"/> (named by <paramref name="what"/>, such as <c>--owner</c>) when it holds a character no terminal should receive.</summary>
    public static void Check(string what, string? value)
    {
        if (Problem(what, value) is { } problem)
        {
            throw new UserInputException(problem);
        }
    }

    /// <summary>What is wrong with <paramref name="value"/> as free text, or null when nothing is.</summary>
    public static string? Problem(string what, string? value)
    {
        for (var i = 0; i < (value?.Length ?? 0); i++)
        {
            if (IsHostile(value![i]))
            {
                return $"{what} holds the control character U+{((int)value[i]).ToString("X4", CultureInfo.InvariantCulture)} at position {i + 1}; free text must be one line of printable characters";
            }
        }

        return null;
    }

    /// <summary>Refuses any of <paramref name="values"/> as <see cref="Check(string, string?)"/> does.</summary>
    public static void Check(string what, IEnumerable<string> values)
    {
        foreach (var value in values)
        {
            Check(what, value);
        }
    }

    /// <summary>The text with every character a terminal would act on written as an escape (<c>\e</c>, <c>\n</c>, <c>\u202E</c>).</summary>
    public static string Printable(string? text)
    {
        if (text is null || !text.Any(IsHostile))
        {
            return text ?? string.Empty;
        }

        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            sb.Append(c switch
            {
                '\u001b' => "\\e",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when IsHostile(c) => "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }

        return sb.ToString();
    }

    /// <summary>A C0 or C1 control character (tab included), or a bidirectional embedding, override or isolate.</summary>
    private static bool IsHostile(char c) =>
        char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069';
}
