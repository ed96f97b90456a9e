using Capstan.Core.State;
using Capstan.State.Etcd;
using Capstan.State.Files;
using Capstan.Testing;

namespace Capstan.State.Tests;

/// <summary>The typed state over both stores: rules, compare-and-swap, history.</summary>
public abstract class DynamicStateContract
{
    protected static readonly string[] Dcs = ["eqiad", "codfw"];

    protected abstract IStateStore CreateStore();

    protected string Project { get; } = "farm" + Guid.NewGuid().ToString("N")[..6];

    private DynamicStateService Service(IStateStore store) => new(store, Project, Dcs, TimeProvider.System);

    private async Task<DynamicStateService> InitializedAsync(IStateStore store)
    {
        var service = Service(store);
        await service.ChangeAsync(new StateChange.Initialize(StateRules.Fresh("eqiad", Dcs)), "alice", "first state", force: false, default);
        return service;
    }

    [Fact]
    public async Task Uninitialised_state_reads_as_none_and_required_reads_fail_closed()
    {
        await using var store = CreateStore();
        var service = Service(store);
        Assert.Null((await service.ReadAsync(default)).State);
        var ex = await Assert.ThrowsAsync<StateStoreException>(() => service.ReadRequiredAsync(default));
        Assert.Contains("capstan state init", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Changes_record_who_when_why_and_the_previous_value()
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);
        await service.ChangeAsync(new StateChange.SetMaintenance(false), "bob", "switchover", false, default);
        await service.ChangeAsync(new StateChange.SetReadOnly("eqiad", "switchover in progress"), "bob", "switchover", false, default);
        var write = await service.ChangeAsync(new StateChange.SetPrimaryDc("codfw"), "carol", "switch to codfw", false, default);
        Assert.True(write.Written);
        Assert.Equal("primary_dc: eqiad -> codfw", write.Description);

        var state = await service.ReadRequiredAsync(default);
        Assert.Equal("codfw", state.PrimaryDc);
        Assert.True(state.IsReadOnly("eqiad"));

        var history = await service.HistoryAsync(default);
        Assert.Equal([1L, 2, 3, 4], history.Select(h => h.Sequence));
        var last = history[^1];
        Assert.Equal("carol", last.Stamp.Actor);
        Assert.Equal("switch to codfw", last.Stamp.Reason);
        Assert.Equal("eqiad", last.Previous!.PrimaryDc);
        Assert.Equal("codfw", last.Current.PrimaryDc);
        Assert.True((DateTimeOffset.UtcNow - last.Stamp.At).Duration() < TimeSpan.FromMinutes(1));
    }

    [Theory]
    [InlineData("unknown datacenter 'ulsfo' (allowed: eqiad, codfw)")]
    public async Task Unknown_datacenters_are_refused_and_nothing_is_written(string message)
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);
        var before = await service.ReadAsync(default);
        var ex = await Assert.ThrowsAsync<StateRefusedException>(() => service.ChangeAsync(new StateChange.SetPrimaryDc("ulsfo"), "a", "r", false, default));
        Assert.Equal(message, ex.Message);
        Assert.Equal(before.ModRevision, (await service.ReadAsync(default)).ModRevision);
    }

    [Fact]
    public async Task Empty_reasons_are_refused()
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);
        await Assert.ThrowsAsync<StateRefusedException>(() => service.ChangeAsync(new StateChange.SetMaintenance(false), "a", "  ", false, default));
        await Assert.ThrowsAsync<StateRefusedException>(() => service.ChangeAsync(new StateChange.SetReadOnly("eqiad", ""), "a", "r", false, default));
        Assert.Single(await service.HistoryAsync(default));
    }

    [Fact]
    public async Task Nonsense_states_need_force()
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);

        // Maintenance is enabled; making the primary read-only would leave maintenance enabled on a read-only primary.
        var ex = await Assert.ThrowsAsync<StateRefusedException>(() => service.ChangeAsync(new StateChange.SetReadOnly("eqiad", "maintenance window"), "a", "r", false, default));
        Assert.Contains("--force", ex.Message, StringComparison.Ordinal);
        Assert.False((await service.ReadRequiredAsync(default)).IsReadOnly("eqiad"));

        var forced = await service.ChangeAsync(new StateChange.SetReadOnly("eqiad", "maintenance window"), "a", "r", true, default);
        Assert.True(forced.Written);
        Assert.True((await service.HistoryAsync(default))[^1].Forced);
        Assert.NotEmpty((await service.ReadRequiredAsync(default)).Incoherences());
    }

    [Fact]
    public async Task Writing_the_same_value_writes_nothing()
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);
        var write = await service.ChangeAsync(new StateChange.SetPrimaryDc("eqiad"), "a", "r", false, default);
        Assert.False(write.Written);
        Assert.Single(await service.HistoryAsync(default));
    }

    [Fact]
    public async Task A_write_after_someone_else_changed_the_state_is_a_conflict_and_writes_nothing()
    {
        await using var store = CreateStore();
        await InitializedAsync(store);
        await using var other = CreateStore();
        var interleaving = new InterleavingStore(store, async () =>
            await Service(other).ChangeAsync(new StateChange.SetMaintenance(false), "other", "meanwhile", false, default));
        var service = Service(interleaving);
        var ex = await Assert.ThrowsAsync<StateConflictException>(() => service.ChangeAsync(new StateChange.SetPrimaryDc("codfw"), "me", "r", false, default));
        Assert.Contains("changed under you", ex.Message, StringComparison.Ordinal);
        var state = await Service(store).ReadRequiredAsync(default);
        Assert.Equal("eqiad", state.PrimaryDc);
        Assert.False(state.MaintenanceEnabled);
        Assert.Equal(2, (await Service(store).HistoryAsync(default)).Count);
    }

    [Fact]
    public async Task Concurrent_writers_lose_no_update()
    {
        await using var seed = CreateStore();
        await InitializedAsync(seed);
        var written = 0;
        var stores = Enumerable.Range(0, 3).Select(_ => CreateStore()).ToList();
        await Task.WhenAll(stores.Select((store, w) => Task.Run(async () =>
        {
            var service = Service(store);
            for (var i = 0; i < 10; i++)
            {
                while (true)
                {
                    try
                    {
                        var reason = $"writer {w} round {i}";
                        var current = await service.ReadRequiredAsync(default);
                        var change = new StateChange.SetReadOnly("codfw", current.IsReadOnly("codfw") ? null : reason);
                        if ((await service.ChangeAsync(change, $"w{w}", reason, false, default)).Written)
                        {
                            Interlocked.Increment(ref written);
                        }

                        break;
                    }
                    catch (StateConflictException)
                    {
                    }
                }
            }
        })));
        foreach (var store in stores)
        {
            await store.DisposeAsync();
        }

        var history = await Service(seed).HistoryAsync(default);
        Assert.Equal(written + 1, history.Count);
        Assert.Equal(Enumerable.Range(1, history.Count).Select(i => (long)i), history.Select(h => h.Sequence));
        for (var i = 1; i < history.Count; i++)
        {
            // Each entry's previous state is exactly the state the entry before it wrote: no update was lost.
            Assert.Equal(StateRules.Summary(history[i - 1].Current), StateRules.Summary(history[i].Previous!));
        }
    }

    [Fact]
    public async Task Watch_sees_each_change()
    {
        await using var store = CreateStore();
        var service = await InitializedAsync(store);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<StateDocument>();
        var ready = new TaskCompletionSource();
        var watching = Task.Run(async () =>
        {
            var enumerator = service.WatchAsync(cts.Token).GetAsyncEnumerator(cts.Token);
            var first = enumerator.MoveNextAsync();
            ready.SetResult();
            if (await first)
            {
                seen.Add(enumerator.Current.Document);
            }

            while (seen.Count < 3 && await enumerator.MoveNextAsync())
            {
                seen.Add(enumerator.Current.Document);
            }

            await enumerator.DisposeAsync();
        });
        await ready.Task;
        await Task.Delay(300);
        await service.ChangeAsync(new StateChange.SetMaintenance(false), "a", "one", false, default);
        await service.ChangeAsync(new StateChange.SetReadOnly("codfw", "two"), "a", "two", false, default);
        await service.ChangeAsync(new StateChange.SetReadOnly("codfw", null), "a", "three", false, default);
        await watching.WaitAsync(cts.Token);
        Assert.Equal(["one", "two", "three"], seen.Select(d => d.Updated.Reason));
    }

    [Fact]
    public async Task A_stored_state_naming_unknown_datacenters_is_refused()
    {
        await using var store = CreateStore();
        var other = new DynamicStateService(store, Project, ["eqiad", "ulsfo"], TimeProvider.System);
        await other.ChangeAsync(new StateChange.Initialize(StateRules.Fresh("ulsfo", ["eqiad", "ulsfo"])), "a", "r", false, default);
        var ex = await Assert.ThrowsAsync<StateStoreException>(() => Service(store).ReadAsync(default));
        Assert.Contains("does not fit this repo", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Runs another writer between a service's read and its write.</summary>
    private sealed class InterleavingStore(IStateStore inner, Func<Task> between) : IStateStore
    {
        public string Address => inner.Address;

        public Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);

        public Task<(IReadOnlyList<StoredValue> Items, long Revision)> ListAsync(string prefix, CancellationToken cancellationToken) => inner.ListAsync(prefix, cancellationToken);

        public async Task<TxnResult> CommitAsync(StoreTxn txn, CancellationToken cancellationToken)
        {
            await between();
            return await inner.CommitAsync(txn, cancellationToken);
        }

        public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken) => inner.GrantLeaseAsync(ttl, cancellationToken);

        public Task KeepAliveAsync(long lease, CancellationToken cancellationToken) => inner.KeepAliveAsync(lease, cancellationToken);

        public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken) => inner.RevokeLeaseAsync(lease, cancellationToken);

        public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken) => inner.WatchAsync(prefix, fromRevision, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Collection("etcd")]
public sealed class EtcdDynamicStateTests(EtcdServer etcd) : DynamicStateContract
{
    protected override IStateStore CreateStore() => new EtcdStateStore([etcd.Endpoint], "/capstan-state");
}

public sealed class FileDynamicStateTests : DynamicStateContract, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-state-" + Guid.NewGuid().ToString("N"));

    protected override IStateStore CreateStore() => new FileStateStore(_dir, pollInterval: TimeSpan.FromMilliseconds(10));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}

public sealed class StateStoreAddressTests
{
    [Theory]
    [InlineData("etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379?prefix=/capstan")]
    [InlineData("etcd://a:1,b:2?prefix=/farm", "etcd://a:1,b:2?prefix=/farm")]
    public async Task Etcd_addresses(string address, string expected)
    {
        await using var store = StateStoreAddress.Open(address, "/repo");
        Assert.Equal(expected, store.Address);
    }

    [Fact]
    public async Task File_addresses_are_relative_to_the_repo()
    {
        await using var store = StateStoreAddress.Open("file://.capstan/state", "/repo");
        Assert.Equal("file:///repo/.capstan/state", store.Address);
    }

    [Theory]
    [InlineData("redis://x:1")]
    [InlineData("etcd://")]
    [InlineData("etcd://host:port:x")]
    [InlineData("etcd://a:1?prefx=/x")]
    [InlineData("file://")]
    public void Bad_addresses_are_user_errors(string address) =>
        Assert.Throws<Capstan.Core.Diagnostics.UserInputException>(() => StateStoreAddress.Open(address, "/repo"));
}
