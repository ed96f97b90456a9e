using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Values;

/// <summary>
/// Deep-merges values trees the way Helm layers values files: mappings merge key by key, anything else is
/// replaced by the later layer, and a later <c>null</c> removes the key. Every node keeps its own location,
/// so an error in the merged result still points at the file that set the value.
/// </summary>
public static class ValuesMerger
{
    /// <summary>
    /// Merges <paramref name="overlay"/> over <paramref name="base"/>. A later layer that puts a scalar or list where an
    /// earlier one has a mapping (or the other way round) is an error in <paramref name="diagnostics"/> at the value that
    /// does not fit, since the merge would silently drop every key of the mapping; <c>null</c> still removes a key.
    /// </summary>
    public static ValueNode? Merge(ValueNode? @base, ValueNode? overlay, DiagnosticBag diagnostics) => Merge(@base, overlay, diagnostics, null);

    private static ValueNode? Merge(ValueNode? @base, ValueNode? overlay, DiagnosticBag diagnostics, string? path)
    {
        if (overlay is null)
        {
            return @base;
        }

        if (path is not null && @base is not null and not ValueScalar { IsNull: true } && overlay is not ValueScalar { IsNull: true }
            && (@base is ValueMap) != (overlay is ValueMap))
        {
            // Reported once per value: the scalar that replaced a mapping is not reported again when a later mapping replaces it.
            var (map, other) = @base is ValueMap ? (@base, overlay) : (overlay, @base);
            if (!diagnostics.Items.Any(d => d.Location == other.Location))
            {
                diagnostics.Error(other.Location, $"{path} must be a mapping (as at {map.Location}), not {other.Describe()}; use null to remove it");
            }
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
                entries.Add(over with { Value = Merge(entry.Value, over.Value, diagnostics, path is null ? entry.Key : $"{path}.{entry.Key}")! });
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
