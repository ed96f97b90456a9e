using Capstan.Core.Yaml;

namespace Capstan.Core.Values;

/// <summary>
/// Deep-merges values trees the way Helm layers values files: mappings merge key by key, anything else is
/// replaced by the later layer, and a later <c>null</c> removes the key. Every node keeps its own location,
/// so an error in the merged result still points at the file that set the value.
/// </summary>
public static class ValuesMerger
{
    /// <summary>Merges <paramref name="overlay"/> over <paramref name="base"/>.</summary>
    public static ValueNode? Merge(ValueNode? @base, ValueNode? overlay)
    {
        if (overlay is null)
        {
            return @base;
        }

        if (@base is not ValueMap baseMap || overlay is not ValueMap overlayMap)
        {
            return overlay;
        }

        var entries = new List<MapEntry>(baseMap.Entries.Count + overlayMap.Entries.Count);
        foreach (var entry in baseMap.Entries)
        {
            if (!overlayMap.TryGet(entry.Key, out var over))
            {
                entries.Add(entry);
            }
            else if (over.Value is ValueScalar { IsNull: true })
            {
                continue;
            }
            else
            {
                entries.Add(over with { Value = Merge(entry.Value, over.Value)! });
            }
        }

        foreach (var entry in overlayMap.Entries)
        {
            if (!baseMap.TryGet(entry.Key, out _) && entry.Value is not ValueScalar { IsNull: true })
            {
                entries.Add(entry);
            }
        }

        return new ValueMap(entries, overlayMap.Location);
    }
}
