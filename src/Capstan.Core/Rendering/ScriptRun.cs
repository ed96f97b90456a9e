using System.Security.Cryptography;
using System.Text;

namespace Capstan.Core.Rendering;

/// <summary>One run of a MediaWiki maintenance script (<c>capstan mwscript</c>): a release of its own in a cli group.</summary>
public sealed record ScriptRun(string Release, string Script, string? Wiki, IReadOnlyList<string> Arguments, string User)
{
    /// <summary>The wrapper every MediaWiki script runs through.</summary>
    public const string MwScript = "/srv/mediawiki/multiversion/MWScript.php";

    /// <summary>The container's argv: php, the wrapper, the script, the wiki, then the arguments exactly as given.</summary>
    public IReadOnlyList<string> Argv => ["php", MwScript, Script, .. Wiki is null ? Array.Empty<string>() : ["--wiki", Wiki], .. Arguments];

    /// <summary>A random release name of eight lowercase letters and digits, starting with a letter.</summary>
    public static string NewReleaseName()
    {
        const string letters = "abcdefghijklmnopqrstuvwxyz";
        const string alphabet = letters + "0123456789";
        var name = new StringBuilder(8);
        name.Append(letters[RandomNumberGenerator.GetInt32(letters.Length)]);
        for (var i = 1; i < 8; i++)
        {
            name.Append(alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)]);
        }

        return name.ToString();
    }

    /// <summary>
    /// A string made fit for a label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends): a script path
    /// keeps its file name; anything else becomes '-'.
    /// </summary>
    public static string LabelValue(string text)
    {
        var name = text[(text.LastIndexOf('/') + 1)..];
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray();
        var value = new string(chars);
        if (value.Length > 63)
        {
            value = value[..63];
        }

        return value.Trim('.', '_', '-') is { Length: > 0 } trimmed ? trimmed : "unknown";
    }
}
