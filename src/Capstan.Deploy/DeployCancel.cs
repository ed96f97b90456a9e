using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>Someone asked the running deploy to stop: who, why, when, and which plan.</summary>
public sealed record CancelRequest(string PlanId, string Actor, string Reason, DateTimeOffset At)
{
    /// <summary>"cancelled by alice: wrong branch".</summary>
    public override string ToString() => $"cancelled by {Actor}: {Reason}";
}

/// <summary>
/// Cancelling a running deploy, from any process: the request is a key in the state store beside the journal, which the
/// deploy watches. The deploy stops cooperatively: no release starts after it, the ones applying or rolling out finish,
/// nothing is rolled back, and running the same deploy again continues from what the clusters hold.
/// </summary>
public static class DeployCancel
{
    /// <summary>The key of a farm's cancel request.</summary>
    public static string Key(string project) => $"{project}/deploy-cancel";

    /// <summary>
    /// Asks the running deploy to stop; a user error when none runs. <paramref name="starting"/> names a plan that is about
    /// to run (its caller started it and it has not written its journal yet): the request waits for it.
    /// </summary>
    public static async Task<CancelRequest> RequestAsync(IStateStore store, string project, string actor, string reason, TimeProvider time, CancellationToken cancellationToken, string? starting = null)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new UserInputException("a cancel needs a reason: it is recorded with the deploy");
        }

        var journal = await store.GetAsync(DeployProgress.JournalKey(project), cancellationToken);
        var running = journal is null ? null : JsonNode.Parse(journal.Value)?["planId"]?.GetValue<string>();
        if (running is null && starting is not null)
        {
            // The deploy reads the request when it starts: no journal to compare against yet.
            var early = new CancelRequest(starting, actor, reason.Trim(), time.GetUtcNow());
            await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(Key(project), Json(early))]), cancellationToken);
            return early;
        }

        if (running is not { } planId)
        {
            throw new UserInputException("no deploy is running: there is nothing to cancel");
        }

        var request = new CancelRequest(planId, actor, reason.Trim(), time.GetUtcNow());
        // Only while that deploy's journal is still there: a request for a plan that just ended is not left for a later one.
        var written = await store.CommitAsync(new StoreTxn([new StoreCompare(journal!.Key, journal.ModRevision)], [new StoreOp.Put(Key(project), Json(request))]), cancellationToken);
        return written.Succeeded ? request : throw new UserInputException("the deploy ended before it could be cancelled");
    }

    private static string Json(CancelRequest request) => new JsonObject
    {
        ["planId"] = request.PlanId,
        ["actor"] = request.Actor,
        ["reason"] = request.Reason,
        ["at"] = request.At.ToString("O", CultureInfo.InvariantCulture),
    }.ToJsonString();

    /// <summary>Completes when a cancel request for <paramref name="planId"/> arrives; runs until then or until cancelled.</summary>
    public static async Task<CancelRequest> WaitAsync(IStateStore store, string project, string planId, CancellationToken cancellationToken)
    {
        var (items, revision) = await store.ListAsync(Key(project), cancellationToken);
        if (items.FirstOrDefault(i => i.Key == Key(project)) is { } present && Parse(present.Value) is { } already && already.PlanId == planId)
        {
            return already;
        }

        await foreach (var change in store.WatchAsync(Key(project), revision + 1, cancellationToken))
        {
            if (change.Key == Key(project) && change.Value is { } value && Parse(value) is { } request && request.PlanId == planId)
            {
                return request;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        throw new OperationCanceledException("the watch of cancel requests ended");
    }

    /// <summary>Removes the cancel request of a plan that ended (one for another plan stays).</summary>
    public static async Task ClearAsync(IStateStore store, string project, string planId, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(Key(project), cancellationToken) is { } current && Parse(current.Value)?.PlanId == planId)
        {
            await store.CommitAsync(new StoreTxn([new StoreCompare(current.Key, current.ModRevision)], [new StoreOp.Delete(current.Key)]), cancellationToken);
        }
    }

    private static CancelRequest? Parse(string value)
    {
        try
        {
            return JsonNode.Parse(value) is JsonObject o && o["planId"]?.GetValue<string>() is { } plan
                ? new CancelRequest(plan, o["actor"]?.GetValue<string>() ?? "?", o["reason"]?.GetValue<string>() ?? string.Empty,
                    DateTimeOffset.TryParse(o["at"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at) ? at : DateTimeOffset.MinValue)
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
