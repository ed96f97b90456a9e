using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>Where expiry warnings go: a JSON-lines file, a webhook that gets a POST, or both.</summary>
public sealed record NotificationSink(string? File, Uri? Webhook);

/// <summary>What a collection does: delete expired environments and interrupted creates, sleep idle ones, and warn owners before expiry.</summary>
public sealed record CollectOptions(IReadOnlyList<TimeSpan> WarnBefore, NotificationSink Sink, bool DryRun)
{
    /// <summary>Also refresh every followed environment that fell behind the repo (<c>--refresh-followers</c>).</summary>
    public bool RefreshFollowers { get; init; }

    /// <summary>Warnings three days and one day before expiry.</summary>
    public static IReadOnlyList<TimeSpan> DefaultWarnings { get; } = [TimeSpan.FromDays(3), TimeSpan.FromDays(1)];
}

/// <summary>One thing a collection did (or, dry, would do).</summary>
public sealed record CollectAction(string Environment, string Owner, string What)
{
    /// <summary>True when the environment could not be handled (<see cref="What"/> says why); the others still were.</summary>
    public bool Failed { get; init; }
}

/// <summary>
/// The environments' janitor (<c>capstan env gc</c>): deletes those past their expiry and warns each owner before
/// it, once per threshold (recorded in the environment's record), through the notification sink.
/// </summary>
public sealed class EnvironmentCollector(EnvironmentService environments, TimeProvider time, HttpClient? http = null)
{
    /// <summary>Runs one collection; with <see cref="CollectOptions.DryRun"/> it only says what it would do.</summary>
    public async Task<IReadOnlyList<CollectAction>> CollectAsync(CollectOptions options, string actor, CancellationToken cancellationToken)
    {
        var actions = new List<CollectAction>();
        foreach (var record in await environments.Records.ListAsync(cancellationToken))
        {
            // One environment that cannot be handled (its lock held, its cluster down) does not stop the others.
            try
            {
                await CollectOneAsync(record, options, actor, actions, cancellationToken);
            }
            catch (Exception ex) when (Refusals.Classify(ex) is { } refusal)
            {
                actions.Add(new CollectAction(record.Name, record.Owner, $"failed: {refusal.Message}") { Failed = true });
            }
        }

        return actions;
    }

    private async Task CollectOneAsync(EnvironmentRecord record, CollectOptions options, string actor, List<CollectAction> actions, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (record.Expires <= now)
        {
            actions.Add(new CollectAction(record.Name, record.Owner, $"delete (expired {When(record.Expires)})"));
            // Read again right before: an environment extended since the list is kept.
            if (!options.DryRun && (await environments.Records.GetAsync(record.Name, cancellationToken))?.Record.Expires <= now)
            {
                await environments.DeleteAsync(record.Name, actor, force: true, cancellationToken);
            }

            return;
        }

        if (record.Creating is { } creating)
        {
            if (creating.Interrupted(now, EnvironmentService.CreatePatience))
            {
                actions.Add(new CollectAction(record.Name, record.Owner, $"remove (its create, started {When(creating.Since)}, was interrupted)"));
                // Read again right before: a create resumed since the list is left alone.
                if (!options.DryRun && (await environments.Records.GetAsync(record.Name, cancellationToken))?.Record.Creating == creating)
                {
                    await environments.DeleteAsync(record.Name, actor, force: true, cancellationToken);
                }
            }

            return;
        }

        if (record.Sleeping is null && environments.Policy.Classes.FirstOrDefault(c => c.Name == record.Purpose)?.SleepAfter is { } idleLimit
            && await environments.LastActivityAsync(record, cancellationToken) is var last && now - last > idleLimit)
        {
            actions.Add(new CollectAction(record.Name, record.Owner, $"sleep (idle since {When(last)}; {record.Purpose} environments sleep after {Label(idleLimit)})"));
            if (!options.DryRun)
            {
                await environments.SleepAsync(record.Name, actor, force: true, cancellationToken);
            }
        }

        if (options.RefreshFollowers && record.Base == Core.Environments.EnvironmentBase.Follow && record.Sleeping is null
            && await environments.BehindAsync(record, cancellationToken) is { Count: > 0 } behind)
        {
            actions.Add(new CollectAction(record.Name, record.Owner, $"refresh ({behind.Count} release{(behind.Count == 1 ? string.Empty : "s")} behind the repo)"));
            if (!options.DryRun)
            {
                await environments.RefreshAsync(record.Name, actor, NoProgress.Instance, cancellationToken, force: true, onlyBehind: true);
            }
        }

        // The nearest threshold not yet warned about, once the expiry is within it. A threshold as long as the
        // environment's whole life is none: a one-day environment is not warned about the day it is made.
        var due = options.WarnBefore.OrderBy(t => t)
            .Select(t => (Threshold: t, Name: Label(t)))
            .FirstOrDefault(t => record.Expires - now <= t.Threshold && t.Threshold < record.Expires - record.CreatedAt && !record.Warned.Contains(t.Name));
        if (due.Name is null)
        {
            return;
        }

        actions.Add(new CollectAction(record.Name, record.Owner, $"warn {record.Owner}: expires {When(record.Expires)} (within {due.Name})"));
        if (!options.DryRun)
        {
            // Claimed in the record first (compare-and-swap against what was read), then sent: of two collections
            // running at once only one warns; a warning that cannot be sent is released for the next run.
            var (current, revision) = (await environments.Records.GetAsync(record.Name, cancellationToken))!.Value;
            if (current.Warned.Contains(due.Name))
            {
                actions.RemoveAt(actions.Count - 1);
                return;
            }

            var sent = options.WarnBefore.Where(t => t >= due.Threshold).Select(Label).ToList();
            await environments.Records.ChangeAsync(record.Name, actor, $"warned {record.Owner} ({due.Name} before expiry)", force: true,
                r => r with { Warned = [.. r.Warned.Union(sent, StringComparer.Ordinal)] }, cancellationToken, expectedRevision: revision);
            try
            {
                await NotifyAsync(options.Sink, current, due.Name, now, cancellationToken);
            }
            catch (NotificationFailedException)
            {
                await environments.Records.ChangeAsync(record.Name, actor, $"warning of {record.Owner} not delivered ({due.Name})", force: true,
                    r => r with { Warned = [.. r.Warned.Except(sent, StringComparer.Ordinal)] }, CancellationToken.None);
                throw;
            }
        }
    }

    private async Task NotifyAsync(NotificationSink sink, EnvironmentRecord record, string threshold, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var message = new JsonObject
        {
            ["at"] = now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["environment"] = record.Name,
            ["owner"] = record.Owner,
            ["purpose"] = record.Purpose,
            ["expires"] = record.Expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["warning"] = $"environment {record.Name} expires {When(record.Expires)} (within {threshold}); {Extension(record, now)}",
        };
        if (sink.File is { } file)
        {
            await File.AppendAllTextAsync(file, message.ToJsonString() + "\n", cancellationToken);
        }

        if (sink.Webhook is { } webhook)
        {
            var client = http ?? Shared.Value;
            HttpResponseMessage response;
            try
            {
                response = await client.PostAsJsonAsync(webhook, message, cancellationToken);
            }
            catch (HttpRequestException ex)
            {
                throw new NotificationFailedException($"the notification webhook at {webhook.Host} cannot be reached ({ex.Message}); {record.Owner} was not warned, and the next run tries again", ex);
            }

            using var _ = response;
            if (!response.IsSuccessStatusCode)
            {
                throw new NotificationFailedException($"the notification webhook at {webhook.Host} answered {(int)response.StatusCode}; {record.Owner} was not warned, and the next run tries again");
            }
        }
    }

    /// <summary>The longest extension the class allows now (its cap counts from now), in the words of the command that makes it.</summary>
    private string Extension(EnvironmentRecord record, DateTimeOffset now)
    {
        var cap = environments.Policy.Classes.FirstOrDefault(c => c.Name == record.Purpose)?.MaxLifetime;
        var room = cap is { } c ? c - (record.Expires - now) : TimeSpan.FromDays(7);
        var by = room >= TimeSpan.FromDays(7) ? TimeSpan.FromDays(7)
            : room >= TimeSpan.FromDays(1) ? TimeSpan.FromDays(Math.Floor(room.TotalDays))
            : TimeSpan.FromHours(Math.Floor(room.TotalHours));
        return by < TimeSpan.FromHours(1)
            ? $"{(record.Purpose.Length > 0 && "aeiou".Contains(record.Purpose[0], StringComparison.Ordinal) ? "an" : "a")} {record.Purpose} environment cannot live longer; make a new one when you need it"
            : $"extend it with 'capstan env extend {record.Name} --by {Label(by)}' or let it go";
    }

    /// <summary>Progress of a refresh gc makes: not shown.</summary>
    private sealed class NoProgress : IDeployObserver
    {
        public static readonly NoProgress Instance = new();

        public void OnEvent(DeployEvent e)
        {
        }
    }

    private static readonly Lazy<HttpClient> Shared = new(() => new HttpClient { Timeout = TimeSpan.FromSeconds(10) });

    private static string Label(TimeSpan threshold) =>
        threshold.TotalDays >= 1 && threshold.TotalDays % 1 == 0 ? $"{threshold.TotalDays:0}d" : threshold.TotalHours % 1 == 0 ? $"{threshold.TotalHours:0}h" : $"{threshold.TotalMinutes:0}m";

    private static string When(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}

/// <summary>A warning could not be delivered; nothing was recorded as sent, so the next collection tries again.</summary>
public sealed class NotificationFailedException(string message, Exception? inner = null) : CapstanException(RefusalKind.Failure, message, inner);
