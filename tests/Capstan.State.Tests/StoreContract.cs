namespace Capstan.State.Tests;

/// <summary>The behaviour every state store must have; run against real etcd and against the file store.</summary>
public abstract class StoreContract
{
    protected abstract IStateStore CreateStore();

    protected string Unique { get; } = "t" + Guid.NewGuid().ToString("N")[..8] + "/";

    [Fact]
    public async Task Put_then_get_and_absent_keys()
    {
        await using var store = CreateStore();
        Assert.Null(await store.GetAsync(Unique + "missing", default));
        var put = await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "a", "one")]), default);
        Assert.True(put.Succeeded);
        var value = await store.GetAsync(Unique + "a", default);
        Assert.NotNull(value);
        Assert.Equal("one", value.Value);
        Assert.Equal(put.Revision, value.ModRevision);
        Assert.Equal(1, value.Version);
    }

    [Fact]
    public async Task Compare_and_swap_on_mod_revision()
    {
        await using var store = CreateStore();
        var key = Unique + "cas";
        Assert.True((await store.CommitAsync(new StoreTxn([new StoreCompare(key, 0)], [new StoreOp.Put(key, "v1")]), default)).Succeeded);
        Assert.False((await store.CommitAsync(new StoreTxn([new StoreCompare(key, 0)], [new StoreOp.Put(key, "again")]), default)).Succeeded);
        var v1 = (await store.GetAsync(key, default))!;
        Assert.True((await store.CommitAsync(new StoreTxn([new StoreCompare(key, v1.ModRevision)], [new StoreOp.Put(key, "v2")]), default)).Succeeded);

        // A writer holding the old revision loses, and nothing of its transaction is applied.
        var stale = await store.CommitAsync(new StoreTxn([new StoreCompare(key, v1.ModRevision)], [new StoreOp.Put(key, "v3"), new StoreOp.Put(Unique + "side", "x")]), default);
        Assert.False(stale.Succeeded);
        Assert.Equal("v2", (await store.GetAsync(key, default))!.Value);
        Assert.Null(await store.GetAsync(Unique + "side", default));
    }

    [Fact]
    public async Task Racing_writers_never_lose_an_update()
    {
        const int Writers = 4;
        const int Rounds = 25;
        var key = Unique + "counter";
        var stores = Enumerable.Range(0, Writers).Select(_ => CreateStore()).ToList();
        try
        {
            var conflicts = 0;
            await Task.WhenAll(stores.Select(store => Task.Run(async () =>
            {
                for (var round = 0; round < Rounds; round++)
                {
                    while (true)
                    {
                        var current = await store.GetAsync(key, default);
                        var n = current is null ? 0 : int.Parse(current.Value, System.Globalization.CultureInfo.InvariantCulture);
                        var next = (n + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
                        var result = await store.CommitAsync(new StoreTxn([new StoreCompare(key, current?.ModRevision ?? 0)], [new StoreOp.Put(key, next)]), default);
                        if (result.Succeeded)
                        {
                            break;
                        }

                        Interlocked.Increment(ref conflicts);
                    }
                }
            })));
            var final = await stores[0].GetAsync(key, default);
            Assert.Equal((Writers * Rounds).ToString(System.Globalization.CultureInfo.InvariantCulture), final!.Value);
            Assert.Equal(Writers * Rounds, final.Version);
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Watch_delivers_every_change_in_order()
    {
        await using var store = CreateStore();
        await using var writer = CreateStore();
        var (_, start) = await store.ListAsync(Unique, default);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<WatchEvent>();
        var watching = Task.Run(async () =>
        {
            await foreach (var e in store.WatchAsync(Unique + "w/", start + 1, cts.Token))
            {
                seen.Add(e);
                if (seen.Count == 41)
                {
                    break;
                }
            }
        });
        for (var i = 0; i < 40; i++)
        {
            await writer.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "w/" + (i % 3), i.ToString(System.Globalization.CultureInfo.InvariantCulture))]), default);
            await writer.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "elsewhere", "x")]), default);
        }

        await writer.CommitAsync(new StoreTxn([], [new StoreOp.Delete(Unique + "w/0")]), default);
        await watching.WaitAsync(cts.Token);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), seen.Take(40).Select(e => e.Value));
        Assert.All(seen.Zip(seen.Skip(1)), pair => Assert.True(pair.First.ModRevision < pair.Second.ModRevision));
        Assert.Equal(WatchEventType.Delete, seen[40].Type);
        Assert.Equal(Unique + "w/0", seen[40].Key);
    }

    [Fact]
    public async Task List_by_prefix_is_sorted()
    {
        await using var store = CreateStore();
        foreach (var name in new[] { "c", "a", "b" })
        {
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "list/" + name, name)]), default);
        }

        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "listx", "no")]), default);
        var (items, revision) = await store.ListAsync(Unique + "list/", default);
        Assert.Equal(["a", "b", "c"], items.Select(i => i.Value));
        Assert.True(revision >= items.Max(i => i.ModRevision));
    }

    [Fact]
    public async Task Revoked_lease_deletes_its_keys()
    {
        await using var store = CreateStore();
        var lease = await store.GrantLeaseAsync(TimeSpan.FromSeconds(30), default);
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "leased", "held", lease)]), default);
        await store.KeepAliveAsync(lease, default);
        Assert.Equal(lease, (await store.GetAsync(Unique + "leased", default))!.Lease);
        await store.RevokeLeaseAsync(lease, default);
        Assert.Null(await store.GetAsync(Unique + "leased", default));
        await Assert.ThrowsAnyAsync<StateStoreException>(() => store.KeepAliveAsync(lease, default));
    }

    [Fact]
    public async Task Expired_lease_deletes_its_keys()
    {
        await using var store = CreateStore();
        var lease = await store.GrantLeaseAsync(TimeSpan.FromSeconds(2), default);
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Unique + "expiring", "held", lease)]), default);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (await store.GetAsync(Unique + "expiring", default) is not null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the leased key outlived its lease");
            await Task.Delay(250);
        }
    }
}
