using Capstan.Core.Diagnostics;

namespace Capstan.Core.Train;

/// <summary>Which way a train move goes.</summary>
public enum TrainDirection
{
    /// <summary>The next group not on the train's version moves to it.</summary>
    Forward,

    /// <summary>The last group on the train's version moves back to the previous one.</summary>
    Backward,

    /// <summary>Every group up to the named one runs the train's version, every later one the previous version.</summary>
    To,
}

/// <summary>One group's change in a move.</summary>
public sealed record GroupChange(string Group, string From, string To, int Wikis);

/// <summary>
/// A move of the train: the version it carries, the one it replaces, which groups change, and the wikiversions
/// after it. <see cref="IsNoOp"/> when the train is already there.
/// </summary>
public sealed record TrainMove(TrainDirection Direction, string Version, string Previous, string Stop, IReadOnlyList<GroupChange> Changes, WikiVersions Result)
{
    /// <summary>Nothing changes.</summary>
    public bool IsNoOp => Changes.Count == 0;

    /// <summary>True when any group moves to a newer version (a blocker stops such a move).</summary>
    public bool MovesForward => Changes.Any(c => VersionOrder.Instance.Compare(c.To, c.From) > 0);

    /// <summary>One line for people and records: <c>train forward: group1 to php-1.45 (123 wikis)</c>.</summary>
    public string Describe() =>
        $"train {Direction.ToString().ToLowerInvariant()}{(Direction == TrainDirection.To ? " " + Stop : string.Empty)}: " +
        (IsNoOp ? "no change" : string.Join("; ", Changes.Select(c => $"{c.Group} {c.From} → {c.To} ({c.Wikis} wiki{(c.Wikis == 1 ? string.Empty : "s")})")));

    /// <summary>
    /// Plans a move over <paramref name="map"/>. The train's version is <paramref name="version"/>, else the newest
    /// version in the image; the previous one is the newest other version the wikis run, else the image's next newest.
    /// A version not in the image, or no previous version to move back to, is refused.
    /// </summary>
    public static TrainMove Plan(TrainMap map, IReadOnlyCollection<string> imageVersions, TrainDirection direction, string? stop, string? version)
    {
        var ordered = imageVersions.Order(VersionOrder.Instance).ToList();
        var target = version ?? ordered.LastOrDefault() ?? throw new UserInputException("the image has no code tree (image.sources in capstan.yaml)");
        if (!imageVersions.Contains(target))
        {
            throw new UserInputException($"{target} is not in the image (image.sources: {string.Join(", ", ordered)}): add its code tree to image.sources first");
        }

        var previous = map.Versions.Map.Values.Where(v => v != target && VersionOrder.Instance.Compare(v, target) < 0).Order(VersionOrder.Instance).LastOrDefault()
            ?? ordered.Where(v => VersionOrder.Instance.Compare(v, target) < 0).LastOrDefault();
        var groups = map.Groups;
        bool On(TrainGroup g) => g.Wikis.All(w => map.Versions.Map.GetValueOrDefault(w) == target);

        // The position the move ends at (the index of the last group on the train's version; -1: START), and the groups
        // it touches: forward and backward move one group each and leave the others as they are.
        int end;
        IEnumerable<int> touched;
        switch (direction)
        {
            case TrainDirection.Forward:
                var next = groups.ToList().FindIndex(g => !On(g));
                end = next < 0 ? groups.Count - 1 : next;
                touched = next < 0 ? [] : [next];
                break;
            case TrainDirection.Backward:
                var last = groups.ToList().FindLastIndex(g => g.Wikis.Any(w => map.Versions.Map.GetValueOrDefault(w) == target));
                end = last - 1;
                touched = last < 0 ? [] : [last];
                break;
            default:
                end = stop == TrainSettings.Start ? -1 : groups.ToList().FindIndex(g => g.Name == stop);
                if (end < 0 && stop != TrainSettings.Start)
                {
                    throw new UserInputException($"unknown train group '{stop}' (allowed: {TrainSettings.Start}, {string.Join(", ", groups.Select(g => g.Name))})");
                }

                touched = Enumerable.Range(0, groups.Count);
                break;
        }

        var changes = new List<GroupChange>();
        var result = map.Versions;
        foreach (var i in touched)
        {
            // Up to the stop, every wiki not on the train's version moves to it; behind it, the wikis on the train's
            // version move back, and wikis on any other version stay where they are.
            var group = groups[i];
            var moving = i <= end
                ? group.Wikis.Where(w => map.Versions.Map.GetValueOrDefault(w) != target).ToList()
                : group.Wikis.Where(w => map.Versions.Map.GetValueOrDefault(w) == target).ToList();
            if (moving.Count == 0)
            {
                continue;
            }

            var want = i <= end ? target : previous
                ?? throw new UserInputException($"there is no version before {target} to move {group.Name} back to: wikiversions names no older version and the image has none");
            var from = string.Join("+", moving.Select(w => map.Versions.Map.GetValueOrDefault(w) ?? "(none)").Distinct(StringComparer.Ordinal).Order(VersionOrder.Instance));
            changes.Add(new GroupChange(group.Name, from, want, moving.Count));
            result = result.With(moving, want);
        }

        var stopName = end < 0 ? TrainSettings.Start : groups[end].Name;
        return new TrainMove(direction, target, previous ?? target, stopName, changes, result);
    }
}
