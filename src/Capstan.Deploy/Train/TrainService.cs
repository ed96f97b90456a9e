using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Train;
using Capstan.State;

namespace Capstan.Deploy.Train;

/// <summary>A recorded reason the train must not move forward (<c>capstan train block</c>).</summary>
public sealed record TrainBlocker(string Actor, DateTimeOffset At, string Reason)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Actor} at {At.UtcDateTime:yyyy-MM-dd HH:mm} UTC: {Reason}";
}

/// <summary>A forward move of the train while a blocker is recorded; nothing was changed.</summary>
public sealed class TrainBlockedException(TrainBlocker blocker)
    : CapstanException(RefusalKind.NotAllowed, $"the train is blocked by {blocker}; 'capstan train unblock --reason …' lifts it (moving backward is allowed)")
{
    /// <summary>The blocker.</summary>
    public TrainBlocker Blocker { get; } = blocker;
}

/// <summary>
/// The weekly train of a farm: where it is (the config tree's wikiversions and wiki lists), its blocker (kept in the
/// state store beside the dynamic state, under <c>PROJECT/train/blocker</c>), and its moves. A move is checked
/// (version in the image, no blocker for a forward move, deploys not locked) before its wikiversions is written; the
/// files it wrote are put back when the deploy that ships it does not succeed.
/// </summary>
public sealed class TrainService(FarmModel model, IRepoFiles files, IStateStore store, TimeProvider time)
{
    /// <summary>The farm the train runs on.</summary>
    public FarmModel Model => model;

    private string BlockerKey => $"{model.Project}/train/blocker";

    /// <summary>The versions the image carries (its code trees).</summary>
    public IReadOnlyList<string> ImageVersions => [.. model.Image.Sources.Select(s => s.Version).Order(VersionOrder.Instance)];

    /// <summary>The wikiversions file, relative to the repo.</summary>
    public string WikiVersionsFile =>
        (model.Train ?? throw new UserInputException("capstan.yaml has no train: section")).WikiVersionsPath(model.Image.Config ?? throw new UserInputException("the train needs the config tree: set image.config in capstan.yaml"));

    /// <summary>Where the train is, from the repo's config tree.</summary>
    public TrainMap Map() => TrainMap.Load(model, files);

    /// <summary>The recorded blocker, or null.</summary>
    public async Task<TrainBlocker?> BlockerAsync(CancellationToken cancellationToken) =>
        await store.GetAsync(BlockerKey, cancellationToken) is { } stored
            ? System.Text.Json.JsonSerializer.Deserialize(stored.Value, Json.CapstanJsonContext.Plain.TrainBlocker)
            : null;

    /// <summary>Records a blocker (replacing one there).</summary>
    public async Task<TrainBlocker> BlockAsync(string actor, string reason, CancellationToken cancellationToken)
    {
        FreeText.Check("the reason", reason);
        var blocker = new TrainBlocker(actor, time.GetUtcNow(), reason);
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(BlockerKey, System.Text.Json.JsonSerializer.Serialize(blocker, Json.CapstanJsonContext.Plain.TrainBlocker))]), cancellationToken);
        return blocker;
    }

    /// <summary>Removes the blocker; the one removed, or null when there was none.</summary>
    public async Task<TrainBlocker?> UnblockAsync(CancellationToken cancellationToken)
    {
        var blocker = await BlockerAsync(cancellationToken);
        if (blocker is not null)
        {
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Delete(BlockerKey)]), cancellationToken);
        }

        return blocker;
    }

    /// <summary>
    /// Plans a move and refuses it before anything is written: a version not in the image, a forward move while the
    /// train is blocked, any move while deploys are locked.
    /// </summary>
    public async Task<TrainMove> PlanAsync(TrainDirection direction, string? stop, string? version, CancellationToken cancellationToken)
    {
        var map = Map();
        if (map.Problems(ImageVersions) is [var (where, problem), ..])
        {
            throw new UserInputException($"{where}: {problem} ('capstan validate' lists every problem)");
        }

        var move = TrainMove.Plan(map, ImageVersions, direction, stop, version);
        if (move.MovesForward && await BlockerAsync(cancellationToken) is { } blocker)
        {
            throw new TrainBlockedException(blocker);
        }

        if (!move.IsNoOp && await DeployLock.HolderAsync(store, model.Project, cancellationToken) is { } holder)
        {
            throw new DeployLockedException(holder);
        }

        return move;
    }

    /// <summary>
    /// Writes the move's wikiversions into the config tree and returns what puts it back: the wikiversions and the
    /// other files named (the images values file a build writes), as they were.
    /// </summary>
    public RepoSnapshot Write(TrainMove move, IEnumerable<string> alsoRestore)
    {
        var snapshot = RepoSnapshot.Take(model.RepoRoot, [WikiVersionsFile, .. alsoRestore]);
        RepoSnapshot.WriteFile(Path.Combine(model.RepoRoot, WikiVersionsFile), move.Result.Write());
        return snapshot;
    }
}
