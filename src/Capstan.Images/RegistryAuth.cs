using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>Credentials for a registry.</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>
    /// From <c>CAPSTAN_REGISTRY_USERNAME</c>/<c>CAPSTAN_REGISTRY_PASSWORD</c>, else the <c>auths</c> entry for the host in
    /// <c>$DOCKER_CONFIG/config.json</c> (or <c>~/.docker/config.json</c>); null when there are none.
    /// </summary>
    public static RegistryCredentials? Find(string host, Func<string, string?> environment)
    {
        if (environment("CAPSTAN_REGISTRY_USERNAME") is { } user && environment("CAPSTAN_REGISTRY_PASSWORD") is { } password)
        {
            return new RegistryCredentials(user, password);
        }

        var dir = environment("DOCKER_CONFIG") ?? Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        var file = Path.Combine(dir, "config.json");
        if (!File.Exists(file))
        {
            return null;
        }

        try
        {
            var auth = JsonNode.Parse(File.ReadAllText(file))?["auths"]?[host]?["auth"]?.GetValue<string>();
            if (auth is null)
            {
                return null;
            }

            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(auth)).Split(':', 2);
            return pair.Length == 2 ? new RegistryCredentials(pair[0], pair[1]) : null;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException)
        {
            throw new ImageException($"{file} cannot be read: {ex.Message}");
        }
    }
}

/// <summary>The parameters of a <c>WWW-Authenticate</c> challenge (<c>realm="…",service="…",scope="…"</c>).</summary>
internal static class AuthChallenge
{
    /// <summary>The key/value pairs, quoted or not.</summary>
    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            var eq = text.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var key = text[i..eq].Trim(' ', ',');
            string value;
            if (eq + 1 < text.Length && text[eq + 1] == '"')
            {
                var close = text.IndexOf('"', eq + 2);
                value = text[(eq + 2)..(close < 0 ? text.Length : close)];
                i = close < 0 ? text.Length : close + 1;
            }
            else
            {
                var comma = text.IndexOf(',', eq + 1);
                value = text[(eq + 1)..(comma < 0 ? text.Length : comma)];
                i = comma < 0 ? text.Length : comma + 1;
            }

            result[key] = value;
        }

        return result;
    }
}
