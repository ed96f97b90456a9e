using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Capstan.Core.Diagnostics;

namespace Capstan.Web;

/// <summary>What a user may do, each role including the ones before it.</summary>
public enum Role
{
    /// <summary>Reads everything (as anyone can) and signs in; changes nothing.</summary>
    Viewer,

    /// <summary>Deploys, rolls back and cancels deploys; creates and changes test environments.</summary>
    Deployer,

    /// <summary>Also locks and unlocks the farm's deploys.</summary>
    Admin,
}

/// <summary>A user of the dashboard: the name recorded with their changes, and their role.</summary>
public sealed record User(string Name, Role Role)
{
    /// <summary>The role's word in the tokens file and on the page.</summary>
    public string RoleWord => Role.ToString().ToLowerInvariant();

    /// <summary>True when the user's role includes <paramref name="needed"/>.</summary>
    public bool May(Role needed) => Role >= needed;
}

/// <summary>
/// Who may change things through the dashboard: a tokens file in the spirit of kube-apiserver's static-token format
/// (<c>TOKEN,NAME[,ROLE]</c> per line, <c>#</c> comments), readable by its owner only. The role is <c>viewer</c>,
/// <c>deployer</c> or <c>admin</c>; a line without one is a deployer (as every user was before roles). Without a tokens
/// file the dashboard is read-only.
/// </summary>
public sealed class Users
{
    private readonly Dictionary<string, User> _byTokenHash;

    private Users(Dictionary<string, User> byTokenHash) => _byTokenHash = byTokenHash;

    /// <summary>Nobody: every write is refused.</summary>
    public static Users None { get; } = new([]);

    /// <summary>True when at least one user can sign in.</summary>
    public bool Any => _byTokenHash.Count > 0;

    /// <summary>Users from given tokens (user by token).</summary>
    public static Users Of(IReadOnlyDictionary<string, User> userByToken) =>
        new(userByToken.ToDictionary(kv => Hash(kv.Key), kv => kv.Value, StringComparer.Ordinal));

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

        var users = new Dictionary<string, User>(StringComparer.Ordinal);
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
            if (parts.Length is < 2 or > 3 || parts[0].Length < 16 || parts[1].Length == 0)
            {
                throw new UserInputException($"{path}:{lineNumber}: expected TOKEN,NAME[,ROLE] with a token of at least 16 characters");
            }

            var role = Role.Deployer;
            if (parts.Length == 3 && !TryRole(parts[2], out role))
            {
                throw new UserInputException($"{path}:{lineNumber}: '{parts[2]}' is not a role: use viewer, deployer or admin");
            }

            if (!users.TryAdd(Hash(parts[0]), new User(parts[1], role)))
            {
                throw new UserInputException($"{path}:{lineNumber}: this token is already given to {users[Hash(parts[0])].Name}");
            }
        }

        return new Users(users);
    }

    /// <summary>The user a token belongs to, or null.</summary>
    public User? Authenticate(string? token) =>
        string.IsNullOrEmpty(token) ? null : _byTokenHash.GetValueOrDefault(Hash(token));

    private static bool TryRole(string word, out Role role)
    {
        role = word switch { "viewer" => Role.Viewer, "deployer" => Role.Deployer, "admin" => Role.Admin, _ => (Role)(-1) };
        return role >= 0;
    }

    // Tokens are looked up by their hash, so the comparison does not depend on how much of a guess was right.
    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>A signed-in browser: who, the token its forms must carry, and until when.</summary>
public sealed record Session(string Id, User User, string CsrfToken, DateTimeOffset Expires);

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
    public Session Start(User user)
    {
        var session = new Session(RandomToken(), user, RandomToken(), time.GetUtcNow() + Lifetime);
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
