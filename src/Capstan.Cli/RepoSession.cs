using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.State;

namespace Capstan.Cli;

/// <summary>A loaded deployment repo for one command: where it is, its model, and how to reach its dynamic state.</summary>
internal sealed class RepoSession
{
    private RepoSession(DirectoryRepoFiles files, FarmModel model, IReadOnlyList<Diagnostic> warnings, CliEnvironment env)
    {
        Files = files;
        Model = model;
        Warnings = warnings;
        Renderer = new FarmRenderer(model, files);
        Env = env;
    }

    public DirectoryRepoFiles Files { get; }

    public FarmModel Model { get; }

    public IReadOnlyList<Diagnostic> Warnings { get; }

    public FarmRenderer Renderer { get; }

    private CliEnvironment Env { get; }

    /// <summary>Finds and loads the repo: --repo, else $CAPSTAN_REPO, else the working directory.</summary>
    public static RepoSession Open(CliEnvironment env, string? repoOption)
    {
        var dir = env.Resolve(repoOption ?? env.Get("CAPSTAN_REPO") ?? ".");
        if (!Directory.Exists(dir))
        {
            throw new UserInputException($"deployment repo '{dir}' does not exist");
        }

        var files = new DirectoryRepoFiles(dir);
        var (model, warnings) = RepoLoader.Load(files);
        return new RepoSession(files, model, warnings, env);
    }

    /// <summary>The state store address: --state, else $CAPSTAN_STATE, else capstan.yaml's <c>state</c>.</summary>
    public string StateAddress(string? stateOption) => stateOption ?? Env.Get("CAPSTAN_STATE") ?? Model.StateEndpoint;

    /// <summary>Opens the dynamic state service on the selected store.</summary>
    public (IStateStore Store, DynamicStateService Service) OpenState(string? stateOption)
    {
        var store = StateStoreAddress.Open(StateAddress(stateOption), Files.Root);
        return (store, new DynamicStateService(store, Model.Project, [.. Model.DatacenterNames], TimeProvider.System));
    }

    /// <summary>
    /// Reads the dynamic state: from <paramref name="stateFile"/> (an explicit YAML override) when given, else from the
    /// store. An empty store is initialised from the repo's <c>state-seed</c> when it names one; otherwise an empty or
    /// unreadable store is an error, so nothing is ever rendered from a guessed state.
    /// </summary>
    public async Task<DynamicState> ReadStateAsync(string? stateFile, string? stateOption, CancellationToken cancellationToken)
    {
        if (stateFile is not null)
        {
            var path = Env.Resolve(stateFile);
            if (!File.Exists(path))
            {
                throw new UserInputException($"state file '{stateFile}' does not exist");
            }

            return DynamicStateFile.Parse(await File.ReadAllTextAsync(path, cancellationToken), stateFile, [.. Model.DatacenterNames]);
        }

        var (store, service) = OpenState(stateOption);
        await using (store)
        {
            var read = await service.ReadAsync(cancellationToken);
            if (read.State is { } state)
            {
                return state;
            }

            if (Model.StateSeed is not { } seedFile)
            {
                return await service.ReadRequiredAsync(cancellationToken);
            }

            var seed = DynamicStateFile.Parse(Files.ReadText(seedFile), seedFile, [.. Model.DatacenterNames]);
            try
            {
                await service.ChangeAsync(new StateChange.Initialize(seed), "capstan", $"initialised from {seedFile} (state-seed)", force: false, cancellationToken);
            }
            catch (StateConflictException)
            {
                // Another process seeded the store first; its state is the one to use.
            }
            catch (StateRefusedException ex)
            {
                throw new UserInputException($"{seedFile}: {ex.Message}");
            }

            return await service.ReadRequiredAsync(cancellationToken);
        }
    }

    /// <summary>Who is acting: --actor, else the OS user.</summary>
    public string Actor(string? actorOption) => actorOption ?? Env.Get("USER") ?? Environment.UserName;
}
