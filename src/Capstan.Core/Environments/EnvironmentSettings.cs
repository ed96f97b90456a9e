using System.Text;
using System.Text.RegularExpressions;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.Environments;

/// <summary>
/// <c>--set key.path=value</c> values of an environment: each one becomes a one-line values document of its own,
/// layered after the environment's files in the order given, and named <c>(--set key.path)</c> wherever a value's
/// source is shown.
/// </summary>
public static partial class EnvironmentSettings
{
    /// <summary>The values documents of the settings, by the name each is shown under, in the order given.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Documents(IReadOnlyList<string> settings)
    {
        var documents = new List<KeyValuePair<string, string>>(settings.Count);
        foreach (var setting in settings)
        {
            var equals = setting.IndexOf('=', StringComparison.Ordinal);
            var keys = equals > 0 ? setting[..equals].Split('.') : [];
            if (keys.Length == 0 || keys.Any(k => !KeyPattern().IsMatch(k)))
            {
                throw new UserInputException($"--set '{setting}' is not key=value (a dotted key of letters, digits, '_' and '-', as in php.workers=4)");
            }

            var yaml = new StringBuilder();
            foreach (var key in keys)
            {
                yaml.Append(key).Append(": {");
            }

            yaml.Length -= 1;
            yaml.Append(Scalar(setting[(equals + 1)..])).Append('}', keys.Length - 1).Append('\n');
            documents.Add(KeyValuePair.Create($"(--set {setting[..equals]})", yaml.ToString()));
        }

        return documents;
    }

    /// <summary>
    /// A value as YAML: a plain word stays plain, so numbers and booleans keep their type as in <c>helm --set</c>;
    /// anything else is quoted, so it cannot change the document's structure.
    /// </summary>
    private static string Scalar(string value) =>
        PlainPattern().IsMatch(value) ? value : "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex("^[A-Za-z0-9_.+-][A-Za-z0-9_./:@+-]*$")]
    private static partial Regex PlainPattern();
}
