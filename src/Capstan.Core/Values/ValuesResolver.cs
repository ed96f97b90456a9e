using System.Collections.Concurrent;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Values;

/// <summary>The merged values of one release in one datacenter, and the layer files that were read or missing.</summary>
public sealed record ResolvedValues(ValueMap Tree, IReadOnlyList<string> FilesRead, IReadOnlyList<MissingValuesFile> FilesMissing);

/// <summary>An optional values file that does not exist, and the layer that would have read it.</summary>
public sealed record MissingValuesFile(string Path, ValuesLayer Layer)
{
    /// <inheritdoc/>
    public override string ToString() => $"optional values file '{Path}' ({ValuesLayout.NameOf(Layer)} layer) does not exist";
}

/// <summary>
/// Finds, parses (once per file) and merges the values layers of a release in a datacenter, in the order of
/// <see cref="ValuesLayer"/>. A missing file is not an error: it is listed, and callers report it as a warning.
/// Only the secrets layer may set <c>secrets</c>, and it may set nothing else, so a secret can never leak into a
/// ConfigMap through an ordinary values file. Below every file lies the layer the farm's backends generate
/// (<paramref name="generated"/>), when it has any.
/// </summary>
public sealed class ValuesResolver(IRepoFiles files, ValuesLayout layout, Func<string, string, ValueMap>? generated = null)
{
    private readonly ConcurrentDictionary<string, ParsedFile> _cache = new(StringComparer.Ordinal);

    private sealed record ParsedFile(ValueMap? Tree, IReadOnlyList<Diagnostic> Diagnostics);

    /// <summary>The layered values of a release; throws <see cref="RepoValidationException"/> for broken files.</summary>
    public ResolvedValues Resolve(string dc, string ns, string release) => Resolve(dc, ns, release, null, null);

    /// <summary>
    /// The layered values of a release with an environment's files: <paramref name="secretsFiles"/> instead of the
    /// secrets layer (production's secrets are then never read), and <paramref name="overlayFiles"/> after the release
    /// layer (before the images a deploy writes). Every given file must exist.
    /// </summary>
    public ResolvedValues Resolve(string dc, string ns, string release, IReadOnlyList<string>? overlayFiles, IReadOnlyList<string>? secretsFiles)
    {
        ValueNode merged = generated?.Invoke(dc, ns) ?? new ValueMap([], SourceLocation.OfFile("(defaults)"));
        var read = new List<string>();
        var missing = new List<MissingValuesFile>();
        var errors = new List<Diagnostic>();
        var conflicts = new DiagnosticBag();
        void MergeGiven(IReadOnlyList<string> paths, ValuesLayer layer)
        {
            foreach (var path in paths)
            {
                if (!files.FileExists(path))
                {
                    errors.Add(new Diagnostic(Severity.Error, SourceLocation.OfFile(path), $"environment values file '{path}' does not exist"));
                    continue;
                }

                var parsed = _cache.GetOrAdd(path, p => Parse(p, layer));
                errors.AddRange(parsed.Diagnostics);
                read.Add(path);
                merged = ValuesMerger.Merge(merged, parsed.Tree, conflicts)!;
            }
        }

        foreach (var (_, layer) in ValuesLayout.LayerNames)
        {
            if (layer == ValuesLayer.Secrets && secretsFiles is not null)
            {
                MergeGiven(secretsFiles, ValuesLayer.Secrets);
                continue;
            }

            if (layer == ValuesLayer.Images && overlayFiles is not null)
            {
                MergeGiven(overlayFiles, ValuesLayer.Release);
            }

            foreach (var template in layout.For(layer))
            {
                var expanded = ValuesLayout.Expand(template, dc, ns, release);
                var matches = RepoLoader.ListPattern(files, expanded);
                if (matches.Count == 0)
                {
                    missing.Add(new MissingValuesFile(expanded, layer));
                    continue;
                }

                foreach (var path in matches)
                {
                    var parsed = _cache.GetOrAdd(path, p => Parse(p, layer));
                    errors.AddRange(parsed.Diagnostics);
                    read.Add(path);
                    merged = ValuesMerger.Merge(merged, parsed.Tree, conflicts)!;
                }
            }
        }

        errors.AddRange(conflicts.Sorted());
        if (errors.Count > 0)
        {
            throw new RepoValidationException([.. errors.Distinct()]);
        }

        return new ResolvedValues((ValueMap)merged, read, missing);
    }

    private ParsedFile Parse(string path, ValuesLayer layer)
    {
        var diagnostics = new DiagnosticBag();
        var node = YamlReader.ReadSingle(files.ReadText(path), path, diagnostics);
        if (node is null)
        {
            return new ParsedFile(null, diagnostics.Sorted());
        }

        if (node is not ValueMap map)
        {
            diagnostics.Error(node.Location, $"a values file must be a mapping, not {node.Describe()}");
            return new ParsedFile(null, diagnostics.Sorted());
        }

        foreach (var entry in map.Entries)
        {
            if (layer == ValuesLayer.Secrets && entry.Key != "secrets")
            {
                diagnostics.Error(entry.KeyLocation, $"the secrets file may only set 'secrets', not '{entry.Key}'");
            }
            else if (layer != ValuesLayer.Secrets && entry.Key == "secrets")
            {
                diagnostics.Error(entry.KeyLocation,
                    $"'secrets' may only be set in the secrets layer ({string.Join(", ", layout.For(ValuesLayer.Secrets))}), not in the {ValuesLayout.NameOf(layer)} layer");
            }
        }

        return new ParsedFile(map, diagnostics.Sorted());
    }
}
