using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.LocalCluster;
using Capstan.State;
using Capstan.State.Files;

namespace Capstan.Deploy.Tests;

/// <summary>A clock running faster than real time, so progress deadlines of seconds pass in milliseconds.</summary>
public sealed class FastClock(double factor) : TimeProvider
{
    private readonly DateTimeOffset _start = DateTimeOffset.UtcNow;
    private readonly long _started = global::System.Diagnostics.Stopwatch.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => _start + (global::System.Diagnostics.Stopwatch.GetElapsedTime(_started) * factor);
}

/// <summary>Records progress events.</summary>
public sealed class EventLog : IDeployObserver
{
    private readonly List<DeployEvent> _events = [];

    public IReadOnlyList<DeployEvent> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public void OnEvent(DeployEvent e)
    {
        lock (_events)
        {
            _events.Add(e);
        }
    }
}

/// <summary>A copy of the example farm in a temporary directory, with its local clusters and a file state store.</summary>
public sealed class FarmHarness : IAsyncDisposable
{
    private FarmHarness(string root, FarmModel model, DirectoryRepoFiles files, ClusterSet clusters, IStateStore store)
    {
        Root = root;
        Model = model;
        Files = files;
        Clusters = clusters;
        Store = store;
    }

    public string Root { get; }

    public FarmModel Model { get; private set; }

    public DirectoryRepoFiles Files { get; }

    public ClusterSet Clusters { get; }

    public IStateStore Store { get; }

    public DynamicState State { get; } = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);

    public static async Task<FarmHarness> StartAsync(LocalClusterOptions? options = null, Action<string>? edit = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "capstan-farm-" + Guid.NewGuid().ToString("N"));
        var example = Path.Combine(RepoRoot(), "examples", "wikifarm");
        Capstan.Testing.FarmCopy.To(example, root);

        edit?.Invoke(root);
        var files = new DirectoryRepoFiles(root);
        var model = RepoLoader.Load(files).Model;
        var clusters = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, options ?? new LocalClusterOptions(), default);
        return new FarmHarness(root, model, files, clusters, new FileStateStore(Path.Combine(root, ".capstan", "state")));
    }

    /// <summary>Writes a file of the farm (a values change, a new image) and reloads the model.</summary>
    public void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(Root, path))!);
        File.WriteAllText(Path.Combine(Root, path), text);
        Model = RepoLoader.Load(Files).Model;
    }

    /// <summary>Lets the datacenter's cluster pull only the images its pods in the namespace run now: any new one fails to pull.</summary>
    public async Task OnlyCurrentImagesPullableAsync(string dc, string ns)
    {
        var images = (await Clusters[dc].ListAsync("v1", "Pod", ns, null, default)).Items
            .SelectMany(p => (p["spec"]!["containers"] as System.Text.Json.Nodes.JsonArray)!.Concat(p["spec"]!["initContainers"] as System.Text.Json.Nodes.JsonArray ?? []))
            .Select(c => c!["image"]!.GetValue<string>()).Distinct().ToList();
        Clusters.LocalServer(dc)!.Images.Set(images);
    }

    public DeployService Service(TimeProvider? time = null) => new(Model, new FarmRenderer(Model, Files), Clusters, Store, time ?? TimeProvider.System);

    public async Task<(PreparedDeploy Prepared, DeployResult? Result)> DeployAsync(RenderSelection? selection = null, bool includeNeeds = false, ExecutorOptions? options = null, IDeployObserver? observer = null)
    {
        var service = Service();
        var request = new DeployRequest(selection ?? new RenderSelection(), includeNeeds, false, 20, options ?? new ExecutorOptions { Actor = "test", Reason = "test" });
        var prepared = await service.PrepareAsync(request, State, default);
        if (prepared.Plan.IsNoOp)
        {
            return (prepared, null);
        }

        var result = await service.RunAsync(prepared.Plan, request.Executor, observer ?? new EventLog(), default);
        return (prepared, result);
    }

    public async ValueTask DisposeAsync()
    {
        await Clusters.DisposeAsync();
        await Store.DisposeAsync();
        Directory.Delete(Root, recursive: true);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }
}
