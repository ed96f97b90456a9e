using Capstan.Core.Config;
using Capstan.Core.Diagnostics;

namespace Capstan.Deploy.Backport;

/// <summary>One commit a backport ships, in the tree that holds it.</summary>
public sealed record BackportChange(GitTree Tree, string Commit, string Description);

/// <summary>The commits of a backport, checked, and the commit each touched tree was at before it.</summary>
public sealed record BackportPlan(IReadOnlyList<BackportChange> Changes, bool Revert, IReadOnlyDictionary<GitTree, string> HeadsBefore)
{
    /// <summary>One line for records and announcements: <c>backport: php-1.44 1a2b3c4 Fix the thing; config …</c>.</summary>
    public string Describe() =>
        (Revert ? "revert: " : "backport: ") + string.Join("; ", Changes.Select(c => $"{c.Tree.Name} {c.Description}"));
}

/// <summary>
/// Backports from the git repositories of the image's trees (each code tree of <c>image.sources</c> and the config
/// tree): which commits, whether each may ship, and putting them on the trees' HEAD, or taking them off again.
/// </summary>
public static class Backports
{
    /// <summary>The image's trees that are git repositories of their own.</summary>
    public static async Task<IReadOnlyList<GitTree>> TreesAsync(FarmModel model, CancellationToken cancellationToken)
    {
        var trees = new List<GitTree>();
        var named = model.Image.Sources.Select(s => (s.Version, s.Path)).ToList();
        if (model.Image.Config is { } config)
        {
            named.Add(("config", config));
        }

        foreach (var (name, path) in named)
        {
            if (await GitTree.OpenAsync(name, Path.Combine(model.RepoRoot, path), cancellationToken) is { } tree)
            {
                trees.Add(tree);
            }
        }

        return trees.Count > 0 ? trees
            : throw new UserInputException($"no tree of the image is a git repository of its own ({string.Join(", ", named.Select(n => $"{n.Item1} at {n.Item2}"))}): a backport ships commits of the trees' repositories");
    }

    /// <summary>
    /// Checks the commits (hashes, refs or ranges <c>A..B</c>) and says which tree holds each. Refused, changing nothing:
    /// a commit in no tree, a tree with uncommitted changes or without an upstream branch, a commit not on the upstream
    /// branch, one HEAD already holds; for a revert, a commit HEAD does not hold.
    /// </summary>
    public static async Task<BackportPlan> PlanAsync(FarmModel model, IReadOnlyList<string> commits, bool revert, CancellationToken cancellationToken)
    {
        if (commits.Count == 0)
        {
            throw new UserInputException("name at least one commit (a hash, a ref, or a range A..B)");
        }

        var trees = await TreesAsync(model, cancellationToken);
        var changes = new List<BackportChange>();
        foreach (var given in commits)
        {
            FreeText.Check("a commit", given);
            var range = given.Split("..", 2);
            var holders = new List<GitTree>();
            foreach (var tree in trees)
            {
                if (await tree.ResolveAsync(range[0], cancellationToken) is not null && (range.Length == 1 || await tree.ResolveAsync(range[1], cancellationToken) is not null))
                {
                    holders.Add(tree);
                }
            }

            if (holders.Count > 1)
            {
                throw new UserInputException($"'{given}' names a commit in several trees ({string.Join(", ", holders.Select(t => t.Name))}): give the full hash");
            }

            var holder = holders.FirstOrDefault();
            if (holder is null)
            {
                throw new UserInputException($"'{given}' is a commit of none of the image's trees ({string.Join(", ", trees.Select(t => $"{t.Name} at {t.Path}"))})");
            }

            var hashes = range.Length == 1 ? [(await holder.ResolveAsync(given, cancellationToken))!] : await holder.RangeAsync(given, cancellationToken);
            foreach (var hash in hashes.Where(h => !changes.Any(c => c.Commit == h)))
            {
                changes.Add(new BackportChange(holder, hash, await holder.DescribeAsync(hash, cancellationToken)));
            }
        }

        if (changes.Count == 0)
        {
            throw new UserInputException($"the range{(commits.Count == 1 ? string.Empty : "s")} {string.Join(", ", commits)} hold{(commits.Count == 1 ? "s" : string.Empty)} no commit");
        }

        var heads = new Dictionary<GitTree, string>();
        foreach (var tree in changes.Select(c => c.Tree).Distinct())
        {
            if (await tree.DirtyAsync(cancellationToken) is { Length: > 0 } dirty)
            {
                throw new UserInputException($"the {tree.Name} tree ({tree.Path}) has uncommitted changes ({dirty.Split('\n')[0].Trim()}…): commit or stash them first, so the image is built from commits alone");
            }

            heads[tree] = await tree.HeadAsync(cancellationToken);
            var upstream = revert ? null : await tree.UpstreamAsync(cancellationToken)
                ?? throw new UserInputException($"the {tree.Name} tree ({tree.Path}) follows no upstream branch, so no commit can be checked against it: 'git -C {tree.Path} branch --set-upstream-to BRANCH'");
            foreach (var change in changes.Where(c => c.Tree == tree))
            {
                if (revert)
                {
                    if (!await tree.IsAncestorAsync(change.Commit, "HEAD", cancellationToken))
                    {
                        throw new UserInputException($"{change.Description} is not deployed in the {tree.Name} tree (HEAD does not hold it): nothing to revert");
                    }
                }
                else if (!await tree.IsAncestorAsync(change.Commit, upstream!, cancellationToken))
                {
                    throw new UserInputException($"{change.Description} is not on {upstream}, the branch the {tree.Name} tree is built from: merge it there first");
                }
                else if (await tree.HeadHasAsync(change.Commit, cancellationToken))
                {
                    throw new UserInputException($"{change.Description} is already deployed: the {tree.Name} tree's HEAD holds it");
                }
            }
        }

        return new BackportPlan(revert ? [.. Enumerable.Reverse(changes)] : changes, revert, heads);
    }

    /// <summary>
    /// Puts the plan's commits (or their reverts) on the trees' HEAD, in order. A conflict puts every tree back and is
    /// refused, naming the commit and the files.
    /// </summary>
    public static async Task ApplyAsync(BackportPlan plan, CancellationToken cancellationToken)
    {
        foreach (var change in plan.Changes)
        {
            if (await change.Tree.ApplyAsync(change.Commit, plan.Revert, cancellationToken) is { } conflict)
            {
                await ResetAsync(plan, CancellationToken.None);
                throw new UserInputException($"{change.Description} does not apply to the {change.Tree.Name} tree's HEAD ({conflict}); nothing was changed");
            }
        }
    }

    /// <summary>Puts every tree the plan touched back at the commit it was at before.</summary>
    public static async Task ResetAsync(BackportPlan plan, CancellationToken cancellationToken)
    {
        foreach (var (tree, head) in plan.HeadsBefore)
        {
            await tree.ResetAsync(head, cancellationToken);
        }
    }
}
