using System.Globalization;
using System.Runtime.CompilerServices;
using Capstan.Core.Diagnostics;
using Capstan.Core.State;

namespace Capstan.State;

/// <summary>What a read of the state found: the document (null when the store holds none yet) and its revision.</summary>
public sealed record StateRead(StateDocument? Document, long ModRevision)
{
    /// <summary>The state, or null when not initialised.</summary>
    public DynamicState? State => Document?.State;
}

/// <summary>The result of a write: the change, whether anything was written, and the new document.</summary>
public sealed record StateWrite(string Description, bool Written, StateDocument Document)
{
    /// <summary>True when the write went through only because it was forced (recorded so in the history).</summary>
    public bool Forced { get; init; }
}

/// <summary>Someone else changed the state between our read and our write; nothing was written.</summary>
public sealed class StateConflictException(string message) : StateStoreException(message, null, RefusalKind.Conflict);

/// <summary>A write the rules refuse (unknown datacenter, empty reason, a nonsense result without --force).</summary>
public sealed class StateRefusedException(string message) : CapstanException(RefusalKind.UserError, message)
{
    /// <inheritdoc/>
    public override string Display => Message + "; nothing was written";
}

/// <summary>
/// The typed dynamic state over a store: one document per farm, written with compare-and-swap on its mod revision,
/// with a history entry added in the same transaction. Reads are strict: a document that does not parse, or that
/// names datacenters the repo does not have, is an error (fail closed), never a guess.
/// </summary>
public sealed class DynamicStateService(IStateStore store, string project, IReadOnlyList<string> datacenters, TimeProvider time)
{
    private string StateKey => $"{project}/state";

    private string HistoryPrefix => $"{project}/state-history/";

    /// <summary>The store's address, for messages.</summary>
    public string Address => store.Address;

    /// <summary>Reads the state.</summary>
    public async Task<StateRead> ReadAsync(CancellationToken cancellationToken)
    {
        var stored = await store.GetAsync(StateKey, cancellationToken);
        return stored is null ? new StateRead(null, 0) : new StateRead(Parse(stored.Value), stored.ModRevision);
    }

    /// <summary>Reads the state and fails when there is none.</summary>
    public async Task<DynamicState> ReadRequiredAsync(CancellationToken cancellationToken) =>
        (await ReadAsync(cancellationToken)).State
        ?? throw new StateStoreException($"the dynamic state has not been initialised in {store.Address}; run 'capstan state init --primary-dc DC --reason …'");

    /// <summary>
    /// Applies a change with compare-and-swap. Throws <see cref="StateRefusedException"/> when the rules refuse it and
    /// <see cref="StateConflictException"/> when the state changed since it was read; in both cases nothing is written.
    /// </summary>
    /// <param name="change">The change.</param>
    /// <param name="actor">Who makes it.</param>
    /// <param name="reason">Why (required).</param>
    /// <param name="force">Write a nonsense state anyway; with <paramref name="byHand"/>, also a switchover's step.</param>
    /// <param name="cancellationToken">Stops the write.</param>
    /// <param name="byHand">
    /// The change is asked for on its own (<c>capstan state set</c>), not by a switchover: a step of a switchover (moving
    /// the primary, making the primary read-only) is then refused unless forced, and a forced one is recorded as such.
    /// </param>
    public async Task<StateWrite> ChangeAsync(StateChange change, string actor, string reason, bool force, CancellationToken cancellationToken, bool byHand = false)
    {
        var current = await ReadAsync(cancellationToken);
        var step = byHand ? CheckByHand(current.State, change, force, datacenters) : null;
        var outcome = StateRules.Apply(current.State, change, datacenters, reason, force);
        if (!outcome.Accepted)
        {
            throw new StateRefusedException(outcome.Refusal!);
        }

        if (outcome.Unchanged)
        {
            return new StateWrite(outcome.Description, false, current.Document!);
        }

        var stamp = new ChangeStamp(actor, time.GetUtcNow(), reason);
        var sequence = (current.Document?.Sequence ?? 0) + 1;
        var document = new StateDocument(outcome.NewState!, sequence, stamp);
        var forced = force && (step is not null || outcome.NewState!.Incoherences().Count > 0);
        var history = new StateHistoryEntry(sequence, stamp, outcome.Description, forced, current.State, outcome.NewState!);
        var txn = new StoreTxn(
            [new StoreCompare(StateKey, current.ModRevision)],
            [
                new StoreOp.Put(StateKey, StateJson.Write(document)),
                new StoreOp.Put(HistoryPrefix + sequence.ToString("D12", CultureInfo.InvariantCulture), StateJson.Write(history)),
            ]);
        var result = await store.CommitAsync(txn, cancellationToken);
        if (!result.Succeeded)
        {
            // A retried request may have landed the first time: if the store holds exactly our document, it is ours.
            var now = await ReadAsync(cancellationToken);
            if (now.Document is { } d && d.Sequence == sequence && d.Updated == stamp)
            {
                return new StateWrite(outcome.Description, true, d) { Forced = forced };
            }

            throw new StateConflictException(
                $"the state changed under you (someone wrote it after we read it); nothing was written. Check 'capstan state get' and run the command again");
        }

        return new StateWrite(outcome.Description, true, document) { Forced = forced };
    }

    /// <summary>
    /// The switchover step a change asked for on its own is (null for none); refused with <see cref="StateRefusedException"/>
    /// unless <paramref name="force"/>.
    /// </summary>
    public static string? CheckByHand(DynamicState? current, StateChange change, bool force, IReadOnlyList<string> datacenters)
    {
        // A change naming an unknown datacenter is left to the rules, which say which are allowed.
        var named = change switch { StateChange.SetPrimaryDc p => p.Datacenter, StateChange.SetReadOnly r => r.Datacenter, _ => null };
        var step = current is null || (named is not null && !datacenters.Contains(named)) ? null : StateRules.SwitchoverStep(current, change);
        if (step is not null && !force)
        {
            throw new StateRefusedException(
                $"{step} is a step of a switchover, which makes the primary read-only first, then moves the primary, makes the CronJobs follow and lifts read-only: " +
                "run 'capstan switchover --from DC --to DC' instead, or add --force to do only this step (recorded as forced and announced)");
        }

        return step;
    }

    /// <summary>The history, oldest first.</summary>
    public async Task<IReadOnlyList<StateHistoryEntry>> HistoryAsync(CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(HistoryPrefix, cancellationToken);
        var entries = new List<StateHistoryEntry>(items.Count);
        foreach (var item in items)
        {
            try
            {
                entries.Add(StateJson.ReadHistory(item.Value));
            }
            catch (FormatException ex)
            {
                throw new StateStoreException($"history entry {item.Key} in {store.Address} is corrupt: {ex.Message}", ex);
            }
        }

        return entries;
    }

    /// <summary>Each new state document as it is written, from the current revision on, until cancelled.</summary>
    public async IAsyncEnumerable<(StateDocument Document, long Revision)> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (_, revision) = await store.ListAsync(StateKey, cancellationToken);
        await foreach (var e in store.WatchAsync(StateKey, revision + 1, cancellationToken))
        {
            if (e.Key == StateKey && e.Type == WatchEventType.Put && e.Value is not null)
            {
                yield return (Parse(e.Value), e.ModRevision);
            }
        }
    }

    private StateDocument Parse(string json)
    {
        StateDocument doc;
        try
        {
            doc = StateJson.ReadDocument(json);
        }
        catch (FormatException ex)
        {
            throw new StateStoreException($"the dynamic state in {store.Address} is corrupt ({ex.Message}); refusing to act on it", ex);
        }

        if (StateRules.Check(doc.State, datacenters) is { } bad)
        {
            throw new StateStoreException($"the dynamic state in {store.Address} does not fit this repo ({bad}); refusing to act on it");
        }

        return doc;
    }
}
