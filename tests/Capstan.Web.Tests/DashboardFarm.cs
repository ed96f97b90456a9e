using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.LocalCluster;
using Capstan.State;
using Capstan.Testing;

namespace Capstan.Web.Tests;

/// <summary>
/// A copy of the example farm, deployed on its embedded clusters (hosted in this process, so a CLI run in another
/// process reaches the same clusters), and its dashboard on a free loopback port with two users.
/// </summary>
public sealed class DashboardFarm : IAsyncLifetime
{
    /// <summary>Alice's token (the tokens file's first line).</summary>
    public const string AliceToken = "alice-0123456789abcdef0123";

    /// <summary>Bob's token.</summary>
    public const string BobToken = "bob-0123456789abcdef012345";

    /// <summary>Vic's token: a viewer, who may read and act on nothing.</summary>
    public const string ViewerToken = "vic-0123456789abcdef012345";

    /// <summary>Ada's token: an admin, who may also lock and unlock deploys.</summary>
    public const string AdminToken = "ada-0123456789abcdef012345";

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "capstan-web-" + Guid.NewGuid().ToString("N"));

    public FarmModel Model { get; private set; } = null!;

    public DirectoryRepoFiles Files { get; private set; } = null!;

    public ClusterSet Clusters { get; private set; } = null!;

    public IStateStore Store { get; private set; } = null!;

    public Dashboard Dashboard { get; private set; } = null!;

    public DashboardData Data { get; private set; } = null!;

    public Uri Url => Dashboard.Url;

    public static string CheckoutRoot { get; } = FindRoot();

    public async Task InitializeAsync()
    {
        FarmCopy.To(Path.Combine(CheckoutRoot, "examples", "wikifarm"), Root);
        foreach (var name in new[] { "qa-web", "refused", "hostile" })
        {
            Testing.FarmCopy.WriteEnvironmentSecrets(Root, name);
        }

        Files = new DirectoryRepoFiles(Root);
        Model = RepoLoader.Load(Files).Model;
        Clusters = await ClusterSet.ConnectAsync(Model, Model.DatacenterNames, _ => null, new LocalClusterOptions(), default);
        Store = StateStoreAddress.Open(Model.StateEndpoint, Root);
        var state = new DynamicStateService(Store, Model.Project, [.. Model.DatacenterNames], TimeProvider.System);
        await state.ChangeAsync(new StateChange.Initialize(StateRules.Fresh("eqiad", [.. Model.DatacenterNames])), "ops", "first state", force: false, default);
        await DeployAsync(new RenderSelection(), "first deploy");

        var tokens = Path.Combine(Root, "tokens.csv");
        File.WriteAllText(tokens, $"# the dashboard's users (a line without a role is a deployer)\n{AliceToken},alice\n{BobToken},bob,deployer\n{ViewerToken},vic,viewer\n{AdminToken},ada,admin\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        Data = new DashboardData(Model, Files, Clusters, Store, TimeProvider.System);
        Dashboard = await Dashboard.StartAsync(
            Data,
            new DashboardOptions(new IPEndPoint(IPAddress.Loopback, 0), Users.Load(tokens)),
            TimeProvider.System,
            default);
    }

    public async Task DisposeAsync()
    {
        await Dashboard.DisposeAsync();
        await Data.DisposeAsync();
        await Clusters.DisposeAsync();
        await Store.DisposeAsync();
        Directory.Delete(Root, recursive: true);
    }

    public void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(Root, path))!);
        File.WriteAllText(Path.Combine(Root, path), text);
    }

    /// <summary>Deploys a selection in this process, with the repo as it is now.</summary>
    public async Task<DeployResult> DeployAsync(RenderSelection selection, string reason, bool forceConflicts = false)
    {
        var model = RepoLoader.Load(Files).Model;
        var service = new DeployService(model, new FarmRenderer(model, Files), Clusters, Store, TimeProvider.System);
        var state = await new DynamicStateService(Store, model.Project, [.. model.DatacenterNames], TimeProvider.System).ReadRequiredAsync(default);
        var options = new ExecutorOptions { Actor = "ops", Reason = reason, ForceConflicts = forceConflicts };
        var prepared = await service.PrepareAsync(new DeployRequest(selection, false, false, Planner.DefaultConcurrency, options), state, default);
        var result = await service.RunAsync(prepared.Plan, options, SilentObserver.Instance, default);
        Assert.True(result.Succeeded, result.Cause);
        return result;
    }

    /// <summary>An HTTP client of the dashboard that keeps cookies and does not follow redirects.</summary>
    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = Url };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    public async Task<JsonObject> GetJsonAsync(string path)
    {
        using var client = Client();
        using var response = await client.GetAsync(path);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode}");
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    /// <summary>Starts the CLI (<c>capstan.dll</c>) as a separate process on this farm.</summary>
    public CliProcess StartCli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "capstan.dll"));
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.ArgumentList.Add("--repo");
        psi.ArgumentList.Add(Root);
        psi.Environment["NO_COLOR"] = "1";
        return new CliProcess(Process.Start(psi)!);
    }

    /// <summary>Runs the CLI to the end.</summary>
    public async Task<(int ExitCode, string Out, string Err)> RunCliAsync(params string[] args)
    {
        using var cli = StartCli(args);
        return await cli.WaitAsync();
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find the checkout root above " + AppContext.BaseDirectory);
    }

}

/// <summary>A CLI process and its output.</summary>
public sealed class CliProcess(Process process) : IDisposable
{
    private readonly Task<string> _out = process.StandardOutput.ReadToEndAsync();
    private readonly Task<string> _err = process.StandardError.ReadToEndAsync();

    public async Task<(int ExitCode, string Out, string Err)> WaitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await _out, await _err);
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFarm>, ICollectionFixture<Browser>
{
    public const string Name = "dashboard";
}
