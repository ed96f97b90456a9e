using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.State;

namespace Capstan.Cli;

/// <summary>A loaded deployment repo for one command: where it is, its model, and how to reach its dynamic state.</summary>
internal sealed class RepoSession
{
    private RepoSession(IRepoFiles files, FarmModel model, IReadOnlyList<Diagnostic> warnings, CliEnvironment env)
    {
        Files = files;
        Model = model;
        Warnings = warnings;
        Renderer = new FarmRenderer(model, files);
        Env = env;
    }

    public IRepoFiles Files { get; }

    public FarmModel Model { get; private set; }

    public IReadOnlyList<Diagnostic> Warnings { get; }

    public FarmRenderer Renderer { get; private set; }

    public CliEnvironment Env { get; }

    /// <summary>Finds and loads the repo: --repo, else $CAPSTAN_REPO, else the working directory.</summary>
    public static RepoSession Open(CliEnvironment env, string? repoOption, IReadOnlyDictionary<string, string>? overrides = null)
    {
        var dir = env.Resolve(repoOption ?? env.Get("CAPSTAN_REPO") ?? ".");
        if (File.Exists(dir))
        {
            throw new UserInputException($"deployment repo '{dir}' is a file, not a directory: --repo names the directory that holds capstan.yaml");
        }

        if (!Directory.Exists(dir))
        {
            throw new UserInputException($"deployment repo '{dir}' does not exist");
        }

        IRepoFiles files = new DirectoryRepoFiles(dir);
        if (overrides is { Count: > 0 })
        {
            files = new OverlayRepoFiles(files, overrides);
        }

        var (model, warnings) = RepoLoader.Load(files);

        // A spelling on its way out is said by every command, not only by validate: whoever runs the farm sees it.
        foreach (var old in warnings.Where(w => w.Message.Contains("the old spelling", StringComparison.Ordinal)))
        {
            if (env.Warned.Add(old.ToString()))
            {
                env.Error.WriteLine(old.ToString());
            }
        }

        return new RepoSession(files, model, warnings, env);
    }

    /// <summary>
    /// Opens the repo scoped to a test environment when <paramref name="environment"/> is given: its groups and
    /// datacenters, its own dynamic state, lock and journals, its namespaces. Without one, production.
    /// </summary>
    public static async Task<RepoSession> OpenAsync(CliEnvironment env, string? repoOption, string? environment, string? stateOption, CancellationToken cancellationToken)
    {
        var session = Open(env, repoOption);
        if (environment is null)
        {
            return session;
        }

        var store = StateStoreAddress.Open(session.StateAddress(stateOption), session.Files.Root, environment: env.Get);
        await using (store)
        {
            var record = (await new EnvironmentStore(store, session.Model.Project, TimeProvider.System).GetAsync(environment, cancellationToken))?.Record
                ?? throw new UserInputException($"there is no test environment '{environment}' ('capstan env list' shows them)");
            if (record.Creating is not null)
            {
                throw new UserInputException($"test environment '{environment}' is still being created (or its create was interrupted: 'capstan env create {environment}' by its owner resumes it)");
            }

            var production = session.Model;
            await Capstan.Deploy.EnvironmentScope.ReadStateAsync(production, record, store, session.Actor(null), TimeProvider.System, cancellationToken);
            (session.Model, session.Renderer) = Capstan.Deploy.EnvironmentScope.Scope(production, session.Files, record);
        }

        return session;
    }

    /// <summary>The state store address: --state, else $CAPSTAN_STATE, else capstan.yaml's <c>state</c>.</summary>
    public string StateAddress(string? stateOption) => stateOption ?? Env.Get("CAPSTAN_STATE") ?? Model.StateEndpoint;

    /// <summary>Opens the dynamic state service on the selected store.</summary>
    public (IStateStore Store, DynamicStateService Service) OpenState(string? stateOption)
    {
        var store = StateStoreAddress.Open(StateAddress(stateOption), Files.Root, environment: Env.Get);
        return (store, new DynamicStateService(store, Model.Project, [.. Model.DatacenterNames], TimeProvider.System));
    }

    /// <summary>
    /// The state-seed this session's state came from without being written (the store was empty and the command may
    /// not initialise it); null when the state was read from the store or a --state-file.
    /// </summary>
    public string? StateFromUnwrittenSeed { get; private set; }

    /// <summary>The state read from <see cref="StateFromUnwrittenSeed"/>, kept to be written by the first write.</summary>
    private DynamicState? _unwrittenSeed;

    /// <summary>
    /// Reads the dynamic state: from <paramref name="stateFile"/> (an explicit YAML override) when given, else from the
    /// store. A store that never held the farm's state takes the repo's <c>state-seed</c>: written to the store (with a
    /// loud note) when <paramref name="initialise"/> is set, else used as it is without writing anything (also with a
    /// note). A store that holds the farm's history but not its state lost it: that is an error, never a re-seed.
    /// Without a seed an empty or unreadable store is an error, so nothing is ever rendered from a guessed state.
    /// </summary>
    public async Task<DynamicState> ReadStateAsync(string? stateFile, string? stateOption, CancellationToken cancellationToken, bool initialise = false)
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

            var history = await service.HistoryAsync(cancellationToken);
            if (history.Count > 0)
            {
                throw new StateStoreException(
                    $"the dynamic state of '{Model.Project}' is missing from {store.Address}, which still holds {history.Count} entries of its history " +
                    $"(the last by {history[^1].Stamp.Actor}: {history[^1].Stamp.Reason}): it existed and vanished, so it is not re-seeded. " + StateStoreException.VanishedAdvice);
            }

            if (Model.StateSeed is not { } seedFile)
            {
                return await service.ReadRequiredAsync(cancellationToken);
            }

            var seed = DynamicStateFile.Parse(Files.ReadText(seedFile), seedFile, [.. Model.DatacenterNames]);
            if (!initialise)
            {
                Env.Error.WriteLine($"capstan: note: the state store {store.Address} is empty; using the state-seed {seedFile} ({Describe(seed)}) without writing it");
                StateFromUnwrittenSeed = seedFile;
                _unwrittenSeed = seed;
                return seed;
            }

            await WriteSeedAsync(service, store.Address, seedFile, seed, cancellationToken);
            return await service.ReadRequiredAsync(cancellationToken);
        }
    }

    /// <summary>Writes the state-seed a read used without writing (the first real deploy of a fresh farm does this).</summary>
    public async Task WriteUnwrittenSeedAsync(string? stateOption, CancellationToken cancellationToken)
    {
        if (StateFromUnwrittenSeed is not { } seedFile || _unwrittenSeed is not { } seed)
        {
            return;
        }

        var (store, service) = OpenState(stateOption);
        await using (store)
        {
            await WriteSeedAsync(service, store.Address, seedFile, seed, cancellationToken);
            StateFromUnwrittenSeed = null;
            _unwrittenSeed = null;
        }
    }

    private async Task WriteSeedAsync(DynamicStateService service, string address, string seedFile, DynamicState seed, CancellationToken cancellationToken)
    {
        try
        {
            await service.ChangeAsync(new StateChange.Initialize(seed), "capstan", $"initialised from {seedFile} (state-seed)", force: false, cancellationToken);
            Env.Error.WriteLine($"capstan: note: the state store {address} was empty: initialised it from the state-seed {seedFile} ({Describe(seed)}); 'capstan state history' shows it");
        }
        catch (StateConflictException)
        {
            // Another process seeded the store first; its state is the one to use.
        }
        catch (StateRefusedException ex)
        {
            throw new UserInputException($"{seedFile}: {ex.Message}");
        }
    }

    private static string Describe(DynamicState state)
    {
        var readOnly = state.ReadOnly.Where(kv => kv.Value is not null).Select(kv => kv.Key).ToList();
        return $"primary {state.PrimaryDc}, read-only {(readOnly.Count == 0 ? "nowhere" : string.Join(",", readOnly))}, maintenance {(state.MaintenanceEnabled ? "enabled" : "disabled")}";
    }

    /// <summary>Builds and publishes the farm's image from this repo, its progress on stderr.</summary>
    public Capstan.Deploy.Actions.ImagePublisher Images() =>
        new(Model, Files, Env.Get, line => Env.Error.WriteLine("capstan: image: " + line), TimeProvider.System)
        {
            Pushed = reference => Commands.LocalImagesCommand.Publish(Model, [reference], Env.Error),
        };

    /// <summary>Who is acting: --actor, else the OS user.</summary>
    public string Actor(string? actorOption) => actorOption ?? Env.Get("USER") ?? Environment.UserName;
}
