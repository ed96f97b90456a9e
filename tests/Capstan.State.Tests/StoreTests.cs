using Capstan.State.Etcd;
using Capstan.State.Files;
using Capstan.Testing;

namespace Capstan.State.Tests;

[CollectionDefinition("etcd")]
public sealed class EtcdCollection : ICollectionFixture<EtcdServer>;

[Collection("etcd")]
public sealed class EtcdStoreContractTests(EtcdServer etcd) : StoreContract
{
    protected override IStateStore CreateStore() => new EtcdStateStore([etcd.Endpoint], "/capstan-test");
}

/// <summary>The same contract against etcd over TLS with authentication: a user and password.</summary>
public sealed class EtcdPasswordStoreContractTests(PasswordEtcdServer etcd) : StoreContract, IClassFixture<PasswordEtcdServer>
{
    protected override IStateStore CreateStore() =>
        new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile, Username = SecureEtcdServer.User, Password = SecureEtcdServer.Password });

    [Fact]
    public async Task A_wrong_password_is_a_clear_error()
    {
        await using var store = new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile, Username = SecureEtcdServer.User, Password = "wrong" });
        var error = await Assert.ThrowsAsync<EtcdRequestException>(() => store.GetAsync("k", default));
        Assert.Equal("etcd refused to authenticate user 'capstan': etcdserver: authentication failed, invalid user ID or password", error.Message);
    }

    [Fact]
    public async Task Without_credentials_etcd_refuses_and_says_so()
    {
        await using var store = new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile });
        var error = await Assert.ThrowsAsync<EtcdRequestException>(() => store.GetAsync("k", default));
        Assert.Contains("user name is empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_etcd_forgot_is_replaced_by_authenticating_again()
    {
        await using var store = (EtcdStateStore)CreateStore();
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put("refresh", "before")]), default);
        Assert.Equal(1, store.Authentications);

        // etcd no longer knows the token (as after its TTL).
        await etcd.ForgetTokensAsync();
        Assert.Equal("before", (await store.GetAsync("refresh", default))!.Value);
        Assert.Equal(2, store.Authentications);
    }

    [Fact]
    public async Task A_member_whose_certificate_the_given_ca_did_not_sign_is_refused()
    {
        await using var store = new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { Username = SecureEtcdServer.User, Password = SecureEtcdServer.Password, Rounds = 1 });
        var error = await Assert.ThrowsAsync<StateStoreException>(() => store.GetAsync("k", default));
        Assert.Contains("SSL", error.Message, StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>The same contract against etcd over mutual TLS: the client certificate is the credential.</summary>
public sealed class EtcdCertificateStoreContractTests(MutualTlsEtcdServer etcd) : StoreContract, IClassFixture<MutualTlsEtcdServer>
{
    protected override IStateStore CreateStore() =>
        new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile, CertFile = etcd.ClientCertificate.Cert, KeyFile = etcd.ClientCertificate.Key });

    [Fact]
    public async Task Without_a_client_certificate_the_connection_is_refused()
    {
        await using var store = new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile, Rounds = 1 });
        var error = await Assert.ThrowsAsync<StateStoreException>(() => store.GetAsync("k", default));
        Assert.StartsWith("etcd is unreachable: 127.0.0.1:", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>
/// etcd that takes the user from the client certificate's CN (client-certificate auth with authentication on): etcd
/// refuses every request through its JSON gateway, password or not, and the error says what is going on.
/// </summary>
public sealed class EtcdCertificateUserTests(CertificateEtcdServer etcd) : IClassFixture<CertificateEtcdServer>
{
    [Fact]
    public async Task A_certificate_user_is_refused_through_the_gateway_with_the_reason()
    {
        await using var store = new EtcdStateStore([etcd.Endpoint], "/capstan-test", new EtcdOptions { CaFile = etcd.CaFile, CertFile = etcd.ClientCertificate.Cert, KeyFile = etcd.ClientCertificate.Key });
        var error = await Assert.ThrowsAsync<EtcdRequestException>(() => store.GetAsync("k", default));
        Assert.EndsWith("(etcd's JSON gateway takes no user from a client certificate: add user=NAME with its password; the certificate still authenticates the connection)", error.Message, StringComparison.Ordinal);
    }
}

public sealed class FileStoreContractTests : StoreContract, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-store-" + Guid.NewGuid().ToString("N"));

    protected override IStateStore CreateStore() => new FileStateStore(_dir, pollInterval: TimeSpan.FromMilliseconds(10));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_corrupt_file_is_an_error_and_is_left_alone()
    {
        Directory.CreateDirectory(_dir);
        var file = Path.Combine(_dir, "store.json");
        await File.WriteAllTextAsync(file, "{ not json");
        await using var store = CreateStore();
        var ex = await Assert.ThrowsAsync<StateStoreException>(() => store.GetAsync("k", default));
        Assert.Contains("corrupt", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<StateStoreException>(() => store.CommitAsync(new StoreTxn([], [new StoreOp.Put("k", "v")]), default));
        Assert.Equal("{ not json", await File.ReadAllTextAsync(file));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_store_is_private_and_a_wider_one_is_narrowed_on_the_next_write()
    {
        const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var store = CreateStore())
        {
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Put("k", "v")]), default);
        }

        Assert.Equal(Owner | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(_dir, "store.json")));
        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(_dir, "store.lock")));

        // As an earlier version left them: 0755 and 0644.
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.Combine(_dir, "store.json"), (UnixFileMode)0b110_100_100);
        await using (var store = CreateStore())
        {
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Put("k", "w")]), default);
        }

        Assert.Equal(Owner | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(_dir, "store.json")));
    }
}

[Collection("etcd")]
public sealed class EtcdFailureTests(EtcdServer etcd)
{
    private static readonly EtcdOptions Quick = new() { RequestTimeout = TimeSpan.FromSeconds(1), ConnectTimeout = TimeSpan.FromMilliseconds(500), Rounds = 2, Backoff = TimeSpan.FromMilliseconds(50) };

    [Fact]
    public async Task A_dead_endpoint_listed_first_is_skipped()
    {
        var dead = new Uri($"http://127.0.0.1:{EtcdServer.FreePort()}");
        await using var store = new EtcdStateStore([dead, etcd.Endpoint], "/capstan-failover", Quick);
        var result = await store.CommitAsync(new StoreTxn([], [new StoreOp.Put("k", "v")]), default);
        Assert.True(result.Succeeded);
        Assert.Equal("v", (await store.GetAsync("k", default))!.Value);
    }

    [Fact]
    public async Task Unreachable_etcd_names_every_endpoint_it_tried()
    {
        var a = EtcdServer.FreePort();
        var b = EtcdServer.FreePort();
        await using var store = new EtcdStateStore([new Uri($"http://127.0.0.1:{a}"), new Uri($"http://127.0.0.1:{b}")], "/x", Quick);
        var ex = await Assert.ThrowsAsync<StateStoreException>(() => store.GetAsync("k", default));
        Assert.StartsWith("etcd is unreachable", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{a}", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{b}", ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>Kills its own etcd, so it does not share the collection's.</summary>
public sealed class EtcdKilledTests : IAsyncLifetime
{
    private readonly EtcdServer _etcd = new();

    public Task InitializeAsync() => _etcd.InitializeAsync();

    public Task DisposeAsync() => _etcd.DisposeAsync();

    [Fact]
    public async Task Etcd_killed_mid_command_gives_a_clear_error_and_then_recovers()
    {
        var options = new EtcdOptions { RequestTimeout = TimeSpan.FromSeconds(1), ConnectTimeout = TimeSpan.FromMilliseconds(500), Rounds = 2, Backoff = TimeSpan.FromMilliseconds(50) };
        await using var store = new EtcdStateStore([_etcd.Endpoint], "/capstan-kill", options);
        Assert.True((await store.CommitAsync(new StoreTxn([], [new StoreOp.Put("k", "before")]), default)).Succeeded);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var watch = Task.Run(async () =>
        {
            await foreach (var _ in store.WatchAsync("k", 1, cts.Token))
            {
            }
        });
        _etcd.Kill();
        var ex = await Assert.ThrowsAsync<StateStoreException>(() => store.GetAsync("k", default));
        Assert.Contains("unreachable", ex.Message, StringComparison.Ordinal);
        var watchError = await Assert.ThrowsAsync<StateStoreException>(() => watch.WaitAsync(cts.Token));
        Assert.Contains("cannot watch", watchError.Message, StringComparison.Ordinal);

        // Same data directory: the value written before the crash is still there.
        await _etcd.StartAsync();
        Assert.Equal("before", (await store.GetAsync("k", default))!.Value);
    }
}
