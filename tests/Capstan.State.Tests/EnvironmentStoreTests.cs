using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.State.Etcd;
using Capstan.State.Files;
using Capstan.Testing;

namespace Capstan.State.Tests;

/// <summary>Environment records, against each store.</summary>
public abstract class EnvironmentStoreContract
{
    protected static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    protected abstract IStateStore CreateStore();

    private static EnvironmentRecord Record(string name, string owner) => new(
        name, owner, "feature", "search ranking change", ["https://phabricator.example/T123"], owner, Now, Now.AddDays(7),
        EnvironmentBase.Follow, null, null, ["eqiad"], ["mw-web", "mw-api-int"]);

    [Fact]
    public async Task A_record_is_created_read_back_changed_and_deleted_with_history()
    {
        await using var store = CreateStore();
        var name = "env-" + Guid.NewGuid().ToString("N")[..8];
        var environments = new EnvironmentStore(store, "test", new ManualClock(Now));
        var record = Record(name, "alice");
        await environments.CreateAsync(record, default);
        Assert.Equal(record.ToJson(), (await environments.GetAsync(name, default))!.Value.Record.ToJson());
        Assert.Contains(await environments.ListAsync(default), r => r.Name == name);

        var extended = await environments.ChangeAsync(name, "alice", "extend", force: false, r => r with { Expires = r.Expires.AddDays(7) }, default);
        Assert.Equal(Now.AddDays(14), extended!.Expires);
        Assert.Null(await environments.ChangeAsync(name, "alice", "delete", force: false, _ => null, default));
        Assert.Null(await environments.GetAsync(name, default));

        var history = await environments.HistoryAsync(name, default);
        Assert.Equal(["created", "extend", "delete"], history.Select(h => h.What));
        Assert.Equal(Now.AddDays(7), history[1].Before!.Expires);
        Assert.Null(history[2].After);

        // The name again: its history goes on after the first environment's, which stays as it was.
        await environments.CreateAsync(Record(name, "bob"), default);
        Assert.Equal([("created", "alice"), ("extend", "alice"), ("delete", "alice"), ("created", "bob")], (await environments.HistoryAsync(name, default)).Select(h => (h.What, h.Actor)));

        // A change against a revision that is no longer current writes nothing.
        var (_, stale) = (await environments.GetAsync(name, default))!.Value;
        await environments.ChangeAsync(name, "bob", "extend", force: false, r => r with { Expires = r.Expires.AddDays(1) }, default);
        await Assert.ThrowsAsync<StateConflictException>(() => environments.ChangeAsync(name, "bob", "sleep", force: false, r => r, default, expectedRevision: stale));
    }

    [Fact]
    public async Task Of_two_creates_of_one_name_one_wins_and_the_other_is_told_who()
    {
        await using var store = CreateStore();
        var name = "env-" + Guid.NewGuid().ToString("N")[..8];
        var environments = new EnvironmentStore(store, "test", new ManualClock(Now));
        var results = await Task.WhenAll(
            Capture(() => environments.CreateAsync(Record(name, "alice"), default)),
            Capture(() => environments.CreateAsync(Record(name, "bob"), default)));
        var loser = Assert.Single(results, r => r is not null)!;
        var winner = (await environments.GetAsync(name, default))!.Value.Record.Owner;
        Assert.StartsWith($"environment '{name}' already exists: owned by {winner} (feature), created by {winner} at 2026-11-30 12:00 UTC", loser.Message, StringComparison.Ordinal);
        Assert.Single(await environments.HistoryAsync(name, default));
    }

    [Fact]
    public async Task Someone_elses_environment_needs_force_and_the_history_says_who()
    {
        await using var store = CreateStore();
        var name = "env-" + Guid.NewGuid().ToString("N")[..8];
        var environments = new EnvironmentStore(store, "test", new ManualClock(Now));
        await environments.CreateAsync(Record(name, "alice"), default);
        var refused = await Assert.ThrowsAsync<UserInputException>(() => environments.ChangeAsync(name, "bob", "delete", force: false, _ => null, default));
        Assert.Equal($"environment '{name}' belongs to alice; to delete it as bob, add --force (recorded)", refused.Message);
        Assert.NotNull(await environments.GetAsync(name, default));

        await environments.ChangeAsync(name, "bob", "delete", force: true, _ => null, default);
        var last = (await environments.HistoryAsync(name, default))[^1];
        Assert.Equal(("bob", true), (last.Actor, last.Forced));
    }

    private static async Task<Exception?> Capture(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (UserInputException ex)
        {
            return ex;
        }
    }
}

[Collection("etcd")]
public sealed class EtcdEnvironmentStoreTests(EtcdServer etcd) : EnvironmentStoreContract
{
    protected override IStateStore CreateStore() => new EtcdStateStore([etcd.Endpoint], "/capstan-test");
}

public sealed class FileEnvironmentStoreTests : EnvironmentStoreContract, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-env-store-" + Guid.NewGuid().ToString("N"));

    protected override IStateStore CreateStore() => new FileStateStore(_dir, pollInterval: TimeSpan.FromMilliseconds(10));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
