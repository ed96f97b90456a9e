using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// Where announcements go (capstan.yaml's <c>notify:</c>): a JSON-lines file (relative to the repo) and webhooks,
/// each event POSTed as JSON, retried <see cref="Retries"/> times.
/// </summary>
public sealed record NotifySettings(string? File, IReadOnlyList<Uri> Webhooks, int Retries)
{
    /// <summary>No announcements.</summary>
    public static NotifySettings None { get; } = new(null, [], 0);

    private static readonly string[] Keys = ["file", "webhooks", "retries"];

    /// <summary>True when announcements go somewhere.</summary>
    public bool Any => File is not null || Webhooks.Count > 0;

    /// <summary>Reads the <c>notify:</c> section (null node: none).</summary>
    public static NotifySettings Read(NodeReader reader, ValueNode? node)
    {
        if (reader.Map(node, "notify", Keys) is not { } map)
        {
            return None;
        }

        var hooks = new List<Uri>();
        foreach (var (url, i) in (reader.StringList(map["webhooks"], "notify.webhooks", allowSingle: true) ?? []).Select((u, i) => (u, i)))
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
            {
                hooks.Add(uri);
            }
            else
            {
                reader.Diagnostics.Error(map["webhooks"]!.Location, $"notify.webhooks[{i}] '{url}' is not an http:// or https:// URL");
            }
        }

        return new NotifySettings(reader.String(map["file"], "notify.file"), hooks, reader.Int(map["retries"], "notify.retries", 0, 10) ?? 3);
    }
}
