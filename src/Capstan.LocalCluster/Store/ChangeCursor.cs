namespace Capstan.LocalCluster.Store;

/// <summary>
/// A controller's place in the store's change history: each call returns what changed since the previous one, or says
/// that the controller has to look at everything (its first call, or when the history no longer reaches back).
/// </summary>
internal sealed class ChangeCursor(ObjectStore store)
{
    private long _last = -1;

    /// <summary>True when something was written since the previous <see cref="Next"/>.</summary>
    public bool Moved => store.ResourceVersion != _last;

    /// <summary>The changes since the previous call, oldest first; <c>Complete</c> is false when the caller has to look at everything.</summary>
    public (List<StoreEvent> Changes, bool Complete) Next()
    {
        var seen = store.ResourceVersion;
        var result = _last < 0 ? ([], false) : store.ChangesSince(_last);
        _last = seen;
        return result;
    }
}
