using System.Security.Cryptography;
using System.Text;
using Capstan.Core.Diagnostics;

namespace Capstan.LocalCluster.Auth;

/// <summary>Who a request comes from: the user, a uid and the groups, as kube-apiserver's authenticators hand them on.</summary>
public sealed record UserInfo(string Name, string Uid, IReadOnlyList<string> Groups)
{
    /// <summary>A request without credentials.</summary>
    public static UserInfo Anonymous { get; } = new("system:anonymous", string.Empty, ["system:unauthenticated"]);

    /// <summary>True for members of <c>system:masters</c>, whom authorization never refuses.</summary>
    public bool IsMaster => Groups.Contains("system:masters");
}

/// <summary>
/// Bearer-token authentication as kube-apiserver's static token file does it: a random admin token (user
/// <c>capstan-admin</c> in <c>system:masters</c>) plus the users of a token file, each line
/// <c>token,user,uid,"group1,group2"</c>. Every authenticated user is also in <c>system:authenticated</c>.
/// </summary>
public sealed class Authenticator
{
    /// <summary>The administrator every cluster has.</summary>
    public const string AdminUser = "capstan-admin";

    private readonly Dictionary<string, UserInfo> _tokens = new(StringComparer.Ordinal);

    /// <summary>Creates the authenticator with the admin token and the users of a token file (already parsed).</summary>
    public Authenticator(string adminToken, IEnumerable<(string Token, UserInfo User)> users)
    {
        AdminToken = adminToken;
        _tokens[adminToken] = new UserInfo(AdminUser, AdminUser, ["system:masters", "system:authenticated"]);
        foreach (var (token, user) in users)
        {
            if (CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(token), System.Text.Encoding.UTF8.GetBytes(adminToken)))
            {
                throw new UserInputException($"the users file gives {user.Name} the admin's token; every user needs a token of their own (at least {MinTokenLength} characters)");
            }

            _tokens[token] = user with { Groups = [.. user.Groups.Append("system:authenticated").Distinct()] };
        }
    }

    /// <summary>The shortest token a users file may give (as guessable as 192 random bits in base64).</summary>
    public const int MinTokenLength = 32;

    /// <summary>The admin token.</summary>
    public string AdminToken { get; }

    /// <summary>A new random token (256 bits, URL-safe base64).</summary>
    public static string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// The user of an <c>Authorization</c> header: <see cref="UserInfo.Anonymous"/> when there is none, null when
    /// the credentials are not valid (kube-apiserver answers 401 then, whatever the path).
    /// </summary>
    public UserInfo? Authenticate(string? authorization)
    {
        if (string.IsNullOrEmpty(authorization))
        {
            return UserInfo.Anonymous;
        }

        const string Bearer = "Bearer ";
        if (!authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return _tokens.TryGetValue(authorization[Bearer.Length..].Trim(), out var user) ? user : null;
    }

    /// <summary>Reads a static token file; a bad line is a <see cref="UserInputException"/> naming the file and line.</summary>
    public static List<(string Token, UserInfo User)> ReadTokenFile(string path)
    {
        string[] lines;
        try
        {
            if (!OperatingSystem.IsWindows() && File.Exists(path)
                && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                throw new UserInputException($"the users file '{path}' can be read by others; make it private first: chmod 600 {path}");
            }

            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"{path}: cannot read the users file: {ex.Message}");
        }

        var users = new List<(string, UserInfo)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var where = $"{path}:{i + 1}";
            var fields = SplitCsv(line) ?? throw new UserInputException($"{where}: error: unbalanced quotes");
            if (fields.Count < 3 || fields[0].Length == 0 || fields[1].Length == 0 || fields[2].Length == 0)
            {
                throw new UserInputException($"{where}: error: expected token,user,uid[,\"group1,group2\"] with a non-empty token, user and uid");
            }

            if (fields[0].Length < MinTokenLength)
            {
                throw new UserInputException($"{where}: error: the token has {fields[0].Length} characters; a token needs at least {MinTokenLength} (for example: openssl rand -base64 32)");
            }

            if (!seen.Add(fields[0]))
            {
                throw new UserInputException($"{where}: error: the token of this line is already used by an earlier line");
            }

            var groups = fields.Count > 3 ? fields[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
            users.Add((fields[0], new UserInfo(fields[1], fields[2], groups)));
        }

        return users;
    }

    private static List<string>? SplitCsv(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString().Trim());
                field.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        if (quoted)
        {
            return null;
        }

        fields.Add(field.ToString().Trim());
        return fields;
    }
}
