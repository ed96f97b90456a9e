using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;

namespace Capstan.State;

/// <summary>
/// A test environment's record: who owns it and why, until when, what it runs and where, and what it is based on.
/// </summary>
public sealed record EnvironmentRecord(
    string Name,
    string Owner,
    string Purpose,
    string Description,
    IReadOnlyList<string> Links,
    string CreatedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset Expires,
    EnvironmentBase Base,
    string? PinnedRevision,
    string? Image,
    IReadOnlyList<string> Datacenters,
    IReadOnlyList<string> Groups)
{
    /// <summary>While asleep: each Deployment's replicas before it was scaled to zero (<c>dc/namespace/name</c>); null when awake.</summary>
    public IReadOnlyDictionary<string, int>? Sleeping { get; init; }

    /// <summary>The values files given at create (besides <c>environments/NAME.yaml</c>), layered again on every refresh.</summary>
    public IReadOnlyList<string> ValuesFiles { get; init; } = [];

    /// <summary>
    /// While the create that made it has not finished: the process creating it. A record that keeps this after that
    /// process is gone belongs to an interrupted create, which the next create of the name resumes and gc removes.
    /// </summary>
    public CreateInProgress? Creating { get; init; }

    /// <summary>The <c>--set key=value</c> values given at create, layered after the values files, in order.</summary>
    public IReadOnlyList<string> Settings { get; init; } = [];

    /// <summary>
    /// The developer's trees its image is built from (<c>VERSION=DIR</c>, and <c>config=DIR</c> for the config tree),
    /// rebuilt by every refresh; empty when it runs an image it was given or production's.
    /// </summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    /// <summary>The expiry warnings already sent to the owner (<c>3d</c>, <c>1d</c>), each once.</summary>
    public IReadOnlyList<string> Warned { get; init; } = [];

    /// <summary>The record as stored (JSON).</summary>
    public string ToJson() => new JsonObject
    {
        ["name"] = Name,
        ["owner"] = Owner,
        ["purpose"] = Purpose,
        ["description"] = Description,
        ["links"] = new JsonArray([.. Links.Select(l => (JsonNode)l)]),
        ["createdBy"] = CreatedBy,
        ["createdAt"] = Stamp(CreatedAt),
        ["expires"] = Stamp(Expires),
        ["base"] = Base == EnvironmentBase.Follow ? "follow" : "pinned",
        ["pinnedRevision"] = PinnedRevision,
        ["image"] = Image,
        ["datacenters"] = new JsonArray([.. Datacenters.Select(d => (JsonNode)d)]),
        ["groups"] = new JsonArray([.. Groups.Select(g => (JsonNode)g)]),
        ["values"] = ValuesFiles.Count == 0 ? null : new JsonArray([.. ValuesFiles.Select(v => (JsonNode)v)]),
        ["creating"] = Creating is null ? null : new JsonObject { ["host"] = Creating.Host, ["pid"] = Creating.Pid, ["since"] = Stamp(Creating.Since) },
        ["set"] = Settings.Count == 0 ? null : new JsonArray([.. Settings.Select(v => (JsonNode)v)]),
        ["warned"] = Warned.Count == 0 ? null : new JsonArray([.. Warned.Select(w => (JsonNode)w)]),
        ["sources"] = Sources.Count == 0 ? null : new JsonArray([.. Sources.Select(v => (JsonNode)v)]),
        ["sleeping"] = Sleeping is null ? null : new JsonObject(Sleeping.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
    }.ToJsonString();

    /// <summary>Reads a stored record; a <see cref="FormatException"/> says what is wrong with it.</summary>
    public static EnvironmentRecord FromJson(string json)
    {
        JsonObject doc;
        try
        {
            doc = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not JSON: {ex.Message}", ex);
        }

        string Text(string field) => doc[field]?.GetValue<string>() ?? throw new FormatException($"no {field}");
        IReadOnlyList<string> Texts(string field) => (doc[field] as JsonArray ?? throw new FormatException($"no {field}")).Select(n => n!.GetValue<string>()).ToList();
        DateTimeOffset Time(string field) => DateTimeOffset.Parse(Text(field), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        return new EnvironmentRecord(
            Text("name"), Text("owner"), Text("purpose"), doc["description"]?.GetValue<string>() ?? string.Empty, Texts("links"),
            Text("createdBy"), Time("createdAt"), Time("expires"),
            Text("base") switch
            {
                "follow" => EnvironmentBase.Follow,
                "pinned" => EnvironmentBase.Pinned,
                var other => throw new FormatException($"base '{other}' is neither follow nor pinned"),
            },
            doc["pinnedRevision"]?.GetValue<string>(), doc["image"]?.GetValue<string>(), Texts("datacenters"), Texts("groups"))
        {
            ValuesFiles = doc["values"] is JsonArray valuesFiles ? [.. valuesFiles.Select(v => v!.GetValue<string>())] : [],
            Creating = doc["creating"] is JsonObject creating
                ? new CreateInProgress(
                    creating["host"]?.GetValue<string>() ?? throw new FormatException("creating has no host"),
                    creating["pid"]?.GetValue<int>() ?? throw new FormatException("creating has no pid"),
                    DateTimeOffset.Parse(creating["since"]?.GetValue<string>() ?? throw new FormatException("creating has no since"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal))
                : null,
            Settings = doc["set"] is JsonArray settings ? [.. settings.Select(v => v!.GetValue<string>())] : [],
            Warned = doc["warned"] is JsonArray warned ? [.. warned.Select(w => w!.GetValue<string>())] : [],
            Sources = doc["sources"] is JsonArray sources ? [.. sources.Select(v => v!.GetValue<string>())] : [],
            Sleeping = doc["sleeping"] is JsonObject sleeping ? sleeping.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<int>() ?? throw new FormatException($"sleeping.{kv.Key} has no replicas")) : null,
        };
    }

    private static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
}

/// <summary>The process creating an environment: its host and process id, and since when.</summary>
public sealed record CreateInProgress(string Host, int Pid, DateTimeOffset Since)
{
    /// <summary>The current process, now.</summary>
    public static CreateInProgress Current(DateTimeOffset now) => new(Environment.MachineName, Environment.ProcessId, now);

    /// <summary>
    /// True when the create can no longer be running: its process on this host is gone, or (on another host, whose
    /// processes cannot be seen) it started more than <paramref name="patience"/> ago.
    /// </summary>
    public bool Interrupted(DateTimeOffset now, TimeSpan patience)
    {
        if (Host != Environment.MachineName)
        {
            return now - Since > patience;
        }

        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(Pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }
}

/// <summary>One change of an environment's record: who, when, what, whether forced, and the record before and after.</summary>
public sealed record EnvironmentHistoryEntry(long Sequence, DateTimeOffset At, string Actor, string What, bool Forced, EnvironmentRecord? Before, EnvironmentRecord? After);

/// <summary>
/// Environment records in the state store: one document per environment (<c>PROJECT/environments/NAME</c>), every
/// change made by compare-and-swap together with a history entry, so two creates of one name cannot both win and
/// every change says who made it.
/// </summary>
public sealed class EnvironmentStore(IStateStore store, string project, TimeProvider time)
{
    private string Key(string name) => $"{project}/environments/{name}";

    private string HistoryPrefix(string name) => $"{project}/environment-history/{name}/";

    /// <summary>A record and its revision (for a later compare-and-swap), or null.</summary>
    public async Task<(EnvironmentRecord Record, long Revision)?> GetAsync(string name, CancellationToken cancellationToken)
    {
        var stored = await store.GetAsync(Key(name), cancellationToken);
        return stored is null ? null : (Read(stored), stored.ModRevision);
    }

    /// <summary>Every record, by name.</summary>
    public async Task<IReadOnlyList<EnvironmentRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync($"{project}/environments/", cancellationToken);
        return [.. items.Select(Read)];
    }

    /// <summary>
    /// Writes a new record; when the name is taken (a record exists, or another create won the race) a
    /// <see cref="UserInputException"/> says who owns it.
    /// </summary>
    public async Task CreateAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        // A name used before keeps its history: the new one continues after it.
        var sequence = await NextSequenceAsync(record.Name, cancellationToken);
        var entry = new EnvironmentHistoryEntry(sequence, time.GetUtcNow(), record.CreatedBy, "created", false, null, record);
        var result = await store.CommitAsync(
            new StoreTxn(
                [new StoreCompare(Key(record.Name), 0), new StoreCompare(HistoryKey(record.Name, sequence), 0)],
                [new StoreOp.Put(Key(record.Name), record.ToJson()), new StoreOp.Put(HistoryKey(record.Name, sequence), Write(entry))]),
            cancellationToken);
        if (!result.Succeeded)
        {
            var holder = await GetAsync(record.Name, cancellationToken);
            throw new UserInputException(holder is { Record: var r }
                ? $"environment '{record.Name}' already exists: owned by {r.Owner} ({r.Purpose}), created by {r.CreatedBy} at {r.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC, expires {r.Expires.UtcDateTime:yyyy-MM-dd HH:mm} UTC"
                : $"environment '{record.Name}' was being created by someone else at the same time; look again with 'capstan env show {record.Name}'");
        }
    }

    /// <summary>
    /// Changes a record (null from <paramref name="change"/> deletes it) by compare-and-swap, with a history entry.
    /// Someone other than the owner needs <paramref name="force"/>, and the entry records it.
    /// </summary>
    public async Task<EnvironmentRecord?> ChangeAsync(
        string name, string actor, string what, bool force, Func<EnvironmentRecord, EnvironmentRecord?> change, CancellationToken cancellationToken, long? expectedRevision = null)
    {
        var current = await GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        var (record, revision) = current;
        if (expectedRevision is { } expected && expected != revision)
        {
            throw new StateConflictException($"environment '{name}' changed since it was read ({what}); nothing was written, run the command again");
        }

        if (record.Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {record.Owner}; to {what} it as {actor}, add --force (recorded)");
        }

        var after = change(record);
        var sequence = await NextSequenceAsync(name, cancellationToken);
        var entry = new EnvironmentHistoryEntry(sequence, time.GetUtcNow(), actor, what, record.Owner != actor, record, after);
        StoreOp write = after is null ? new StoreOp.Delete(Key(name)) : new StoreOp.Put(Key(name), after.ToJson());
        var result = await store.CommitAsync(
            new StoreTxn([new StoreCompare(Key(name), revision), new StoreCompare(HistoryKey(name, sequence), 0)], [write, new StoreOp.Put(HistoryKey(name, sequence), Write(entry))]),
            cancellationToken);
        return result.Succeeded
            ? after
            : throw new StateConflictException($"environment '{name}' changed while it was being changed ({what}); nothing was written, run the command again");
    }

    /// <summary>The history of an environment, oldest first.</summary>
    public async Task<IReadOnlyList<EnvironmentHistoryEntry>> HistoryAsync(string name, CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(HistoryPrefix(name), cancellationToken);
        return [.. items.Select(i => ReadHistory(i))];
    }

    private async Task<long> NextSequenceAsync(string name, CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(HistoryPrefix(name), cancellationToken);
        return items.Count == 0 ? 1 : long.Parse(items[^1].Key[HistoryPrefix(name).Length..], CultureInfo.InvariantCulture) + 1;
    }

    private string HistoryKey(string name, long sequence) => HistoryPrefix(name) + sequence.ToString("D12", CultureInfo.InvariantCulture);

    private EnvironmentRecord Read(StoredValue stored)
    {
        try
        {
            return EnvironmentRecord.FromJson(stored.Value);
        }
        catch (FormatException ex)
        {
            throw new StateStoreException($"environment record {stored.Key} in {store.Address} is corrupt: {ex.Message}");
        }
    }

    private static string Write(EnvironmentHistoryEntry entry) => new JsonObject
    {
        ["sequence"] = entry.Sequence,
        ["at"] = entry.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["actor"] = entry.Actor,
        ["what"] = entry.What,
        ["forced"] = entry.Forced,
        ["before"] = entry.Before is null ? null : JsonNode.Parse(entry.Before.ToJson()),
        ["after"] = entry.After is null ? null : JsonNode.Parse(entry.After.ToJson()),
    }.ToJsonString();

    private EnvironmentHistoryEntry ReadHistory(StoredValue stored)
    {
        try
        {
            var doc = JsonNode.Parse(stored.Value) as JsonObject ?? throw new FormatException("not a JSON object");
            JsonNode Field(string name) => doc[name] ?? throw new FormatException($"no {name}");
            return new EnvironmentHistoryEntry(
                Field("sequence").GetValue<long>(),
                DateTimeOffset.Parse(Field("at").GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                Field("actor").GetValue<string>(),
                Field("what").GetValue<string>(),
                Field("forced").GetValue<bool>(),
                doc["before"] is JsonObject before ? EnvironmentRecord.FromJson(before.ToJsonString()) : null,
                doc["after"] is JsonObject after ? EnvironmentRecord.FromJson(after.ToJsonString()) : null);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            throw new StateStoreException($"environment history entry {stored.Key} in {store.Address} is corrupt: {ex.Message}");
        }
    }
}
