using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Capstan.Core.Diagnostics;

namespace Capstan.Web;

/// <summary>
/// Who may change things through the dashboard: a tokens file in kube-apiserver's static-token format
/// (<c>TOKEN,NAME</c> per line, <c>#</c> comments), readable by its owner only. Without one the dashboard is read-only.
/// </summary>
public sealed class Users
{
    private readonly Dictionary<string, string> _byTokenHash;

    private Users(Dictionary<string, string> byTokenHash) => _byTokenHash = byTokenHash;

    /// <summary>Nobody: every write is refused.</summary>
    public static Users None { get; } = new([]);

    /// <summary>True when at least one user can sign in.</summary>
    public bool Any => _byTokenHash.Count > 0;

    /// <summary>Users from given tokens (name by token).</summary>
    public static Users Of(IReadOnlyDictionary<string, string> nameByToken) =>
        new(nameByToken.ToDictionary(kv => Hash(kv.Key), kv => kv.Value, StringComparer.Ordinal));

    /// <summary>Reads a tokens file; a bad line is an error with its line number, a file others can read is refused.</summary>
    public static Users Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new UserInputException($"tokens file '{path}' does not exist");
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new UserInputException($"tokens file '{path}' can be read by others; make it private first: chmod 600 {path}");
        }

        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            var parts = text.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length < 2 || parts[0].Length < 16 || parts[1].Length == 0)
            {
                throw new UserInputException($"{path}:{lineNumber}: expected TOKEN,NAME with a token of at least 16 characters");
            }

            if (!users.TryAdd(Hash(parts[0]), parts[1]))
            {
                throw new UserInputException($"{path}:{lineNumber}: this token is already given to {users[Hash(parts[0])]}");
            }
        }

        return new Users(users);
    }

    /// <summary>The user a token belongs to, or null.</summary>
    public string? Authenticate(string? token) =>
        string.IsNullOrEmpty(token) ? null : _byTokenHash.GetValueOrDefault(Hash(token));

    // Tokens are looked up by their hash, so the comparison does not depend on how much of a guess was right.
    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>A signed-in browser: who, the token its forms must carry, and until when.</summary>
public sealed record Session(string Id, string Actor, string CsrfToken, DateTimeOffset Expires);

/// <summary>
/// Browser sessions after a sign-in: an unguessable id in an HttpOnly, SameSite=Strict cookie, and a per-session
/// token every form carries (CSRF). Kept in memory: a restart signs everyone out.
/// </summary>
public sealed class Sessions(TimeProvider time)
{
    /// <summary>The cookie's name.</summary>
    public const string Cookie = "capstan_session";

    /// <summary>How long a sign-in lasts.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    /// <summary>Starts a session for a user.</summary>
    public Session Start(string actor)
    {
        var session = new Session(RandomToken(), actor, RandomToken(), time.GetUtcNow() + Lifetime);
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>The live session of a cookie value, or null.</summary>
    public Session? Find(string? id)
    {
        if (id is null || !_sessions.TryGetValue(id, out var session))
        {
            return null;
        }

        if (session.Expires > time.GetUtcNow())
        {
            return session;
        }

        _sessions.TryRemove(id, out _);
        return null;
    }

    /// <summary>Ends a session.</summary>
    public void End(string? id)
    {
        if (id is not null)
        {
            _sessions.TryRemove(id, out _);
        }
    }

    /// <summary>True when a form's token is its session's (compared in constant time).</summary>
    public static bool CsrfMatches(Session session, string? token) =>
        token is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(session.CsrfToken), Encoding.UTF8.GetBytes(token));

    private static string RandomToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
