using System.Text;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// The <c>$(VAR)</c> references Kubernetes expands in a container's command, args and env values before the container
/// starts: a known variable is replaced, <c>$$</c> stands for one <c>$</c>, an unknown reference stays as written.
/// A string taken from a user must be escaped, or <c>$(HOSTNAME)</c> in an argument would not arrive as typed.
/// </summary>
public static class ContainerExpansion
{
    /// <summary>Escapes a literal so that the expansion gives it back unchanged.</summary>
    public static string Escape(string literal) => literal.Replace("$", "$$", StringComparison.Ordinal);

    /// <summary>Expands references; <c>Missing</c> names the first unknown variable, if any.</summary>
    public static (string Value, string? Missing) Expand(string value, IReadOnlyDictionary<string, string> vars)
    {
        var sb = new StringBuilder(value.Length);
        string? missing = null;
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '$')
            {
                sb.Append('$');
                i++;
            }
            else if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '(' && value.IndexOf(')', i + 2) is var close and > 0)
            {
                var name = value[(i + 2)..close];
                if (vars.TryGetValue(name, out var replacement))
                {
                    sb.Append(replacement);
                }
                else
                {
                    sb.Append(value, i, close - i + 1);
                    missing ??= name;
                }

                i = close;
            }
            else
            {
                sb.Append(value[i]);
            }
        }

        return (sb.ToString(), missing);
    }
}
