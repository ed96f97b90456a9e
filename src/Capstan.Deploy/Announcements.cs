using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;

namespace Capstan.Deploy;

/// <summary>
/// One announcement: an event (<c>deploy.start</c>, <c>gate.fail</c>, <c>rollback</c>…), a line in the farm's server
/// admin log style (<c>alice@deploy1002: Synchronized mw-web: T123 fix (duration: 01m 12s)</c>) and structured fields.
/// </summary>
public sealed record Announcement(string Event, string Actor, string Text, DateTimeOffset At, JsonObject Fields)
{
    /// <summary>The admin log line: who, at which host, and what.</summary>
    public string Line => $"{Actor}@{Host}: {Text}";

    /// <summary>The host the announcement is sent from (its short name).</summary>
    public static string Host { get; } = Environment.MachineName.Split('.')[0];

    /// <summary>The announcement as one JSON object (a line of the file, a webhook's body).</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["event"] = Event,
            ["at"] = At.ToString("O", CultureInfo.InvariantCulture),
            ["actor"] = Actor,
            ["host"] = Host,
            ["text"] = Line,
        };
        foreach (var (key, value) in Fields)
        {
            json[key] = value?.DeepClone();
        }

        return json;
    }

    /// <summary>A duration as the admin log writes it: <c>01m 12s</c>.</summary>
    public static string Duration(TimeSpan value) =>
        value.TotalHours >= 1
            ? $"{(int)value.TotalHours:00}h {value.Minutes:00}m {value.Seconds:00}s"
            : $"{(int)value.TotalMinutes:00}m {value.Seconds:00}s";
}

/// <summary>
/// Sends announcements where capstan.yaml's <c>notify:</c> says: a JSON-lines file and webhooks. A webhook that fails is
/// retried (with a growing pause) and reported; an announcement never fails what it announces.
/// </summary>
public sealed class Announcer(NotifySettings settings, string repoRoot, HttpClient http, TimeProvider time)
{
    private static readonly Lock FileLock = new();
    private static readonly HttpClient SharedHttp = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Announcements are read by people too: '+' and non-ASCII letters stay as they are.</summary>
    private static readonly System.Text.Json.JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The announcer of a repo's model (a no-op when it has no <c>notify:</c>).</summary>
    public static Announcer For(FarmModel model, TimeProvider time) => new(model.Notify, model.RepoRoot, SharedHttp, time);

    /// <summary>The pause before the first retry (doubled before each next one).</summary>
    public TimeSpan RetryPause { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock announcements are stamped with.</summary>
    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>Sends an announcement; returns what failed (empty when it all went out). Never throws.</summary>
    public async Task<IReadOnlyList<string>> AnnounceAsync(Announcement announcement, CancellationToken cancellationToken)
    {
        if (!settings.Any)
        {
            return [];
        }

        var problems = new List<string>();
        var json = announcement.ToJson();
        if (settings.File is { } file)
        {
            var path = Path.GetFullPath(Path.Combine(repoRoot, file));
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                lock (FileLock)
                {
                    File.AppendAllText(path, json.ToJsonString(Relaxed) + "\n");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problems.Add($"announcement not written to {path}: {ex.Message}");
            }
        }

        foreach (var hook in settings.Webhooks)
        {
            if (await PostAsync(hook, json, cancellationToken) is { } problem)
            {
                problems.Add(problem);
            }
        }

        return problems;
    }

    private async Task<string?> PostAsync(Uri hook, JsonObject json, CancellationToken cancellationToken)
    {
        var pause = RetryPause;
        string why = string.Empty;
        for (var attempt = 0; attempt <= settings.Retries; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(pause, time, cancellationToken);
                pause *= 2;
            }

            try
            {
                using var content = new StringContent(json.ToJsonString(Relaxed), System.Text.Encoding.UTF8, "application/json");
                using var response = await http.PostAsync(hook, content, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return null;
                }

                why = $"HTTP {(int)response.StatusCode}";
            }
            catch (HttpRequestException ex)
            {
                why = ex.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                why = "no answer in time";
            }
        }

        // The URL may carry a token in its query: only its scheme, host and path are reported.
        return $"announcement to webhook {hook.GetLeftPart(UriPartial.Path)} failed after {settings.Retries + 1} tries: {why}";
    }
}
