using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.Deploy.Actions;
using Capstan.Deploy.Gates;
using Capstan.LocalCluster;
using Capstan.State;

namespace Capstan.Cli;

/// <summary>What deploy-like commands share: the repo, the dynamic state, the clusters and the state store.</summary>
internal sealed class DeploySession : IAsyncDisposable
{
    private DeploySession(RepoSession repo, ClusterSet clusters, IStateStore store, DynamicState? state, TextWriter error)
    {
        _error = error;
        Repo = repo;
        Clusters = clusters;
        Store = store;
        State = state;
    }

    private readonly TextWriter _error;

    public RepoSession Repo { get; }

    public ClusterSet Clusters { get; }

    public IStateStore Store { get; }

    public DynamicState? State { get; }

    public static async Task<DeploySession> OpenAsync(
        CliEnvironment env, string? repoOption, string? stateOption, string? stateFile, RenderSelection selection, CancellationToken cancellationToken, bool initialiseState = false, bool readState = true,
        IReadOnlyDictionary<string, string>? overrides = null, string? testEnvironment = null)
    {
        var repo = testEnvironment is null ? RepoSession.Open(env, repoOption, overrides) : await RepoSession.OpenAsync(env, repoOption, testEnvironment, stateOption, cancellationToken);
        repo.Renderer.CheckSelection(selection);
        var state = stateFile is not null || (readState && repo.Renderer.NeedsState(selection))
            ? await repo.ReadStateAsync(stateFile, stateOption, cancellationToken, initialiseState)
            : null;
        var dcs = selection.Datacenter is { } dc ? [dc] : repo.Model.DatacenterNames.ToList();
        var timing = env.Get("CAPSTAN_LOCAL_TIMING") == "realistic" ? SimulationTiming.Realistic : SimulationTiming.Instant;
        var clusters = await ClusterSet.ConnectAsync(repo.Model, dcs, env.Get, new LocalClusterOptions { Timing = timing, SeedImages = () => RepoImages.Named(repo.Model) }, cancellationToken);
        var (store, _) = repo.OpenState(stateOption);
        return new DeploySession(repo, clusters, store, state, env.Error);
    }

    public DeployService Service() => new(Repo.Model, Repo.Renderer, Clusters, Store, TimeProvider.System, Repo.Env.Logger("deploy"));

    /// <summary>The deploy action on this session; the state-seed it planned from is written with <paramref name="stateOption"/>'s store.</summary>
    public DeployAction Deploy(string? stateOption) => new(new DeployContext(Repo.Model, Repo.Renderer, Clusters, Store, State, TimeProvider.System)
    {
        UnwrittenSeed = Repo.StateFromUnwrittenSeed,
        WriteSeedAsync = ct => Repo.WriteUnwrittenSeedAsync(stateOption, ct),
        Environment = Repo.Env.Get,
        Gates = GateClients.For(Repo.Model),
        Logger = Repo.Env.Logger("deploy"),
    });

    /// <summary>Builds and publishes the farm's image, its progress on stderr.</summary>
    public ImagePublisher Images() => Repo.Images();

    /// <summary>The test environments of the farm, on this session's clusters and store.</summary>
    public EnvironmentService Environments()
    {
        var service = new EnvironmentService(Repo.Model, Repo.Files, Clusters, Store, TimeProvider.System);
        service.Warning += problem => _error.WriteLine("capstan: warning: " + problem);
        return service;
    }

    public async ValueTask DisposeAsync()
    {
        await Clusters.DisposeAsync();
        await Store.DisposeAsync();
    }
}
