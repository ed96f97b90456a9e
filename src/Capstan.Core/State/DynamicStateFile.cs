using System.Collections.Immutable;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.State;

/// <summary>
/// Reads the dynamic state from a small YAML file:
/// <code>
/// primary_dc: eqiad
/// read_only: {eqiad: false, codfw: false}   # false, or the reason as a string
/// maintenance_enabled: true
/// maintenance_reason: "…"                  # optional
/// </code>
/// </summary>
public static class DynamicStateFile
{
    private static readonly string[] Keys = ["primary_dc", "read_only", "maintenance_enabled", "maintenance_reason"];

    /// <summary>Parses and validates the state against the repo's datacenters; throws <see cref="RepoValidationException"/>.</summary>
    public static DynamicState Parse(string text, string file, IReadOnlyList<string> datacenters)
    {
        var diagnostics = new DiagnosticBag();
        var reader = new NodeReader(diagnostics);
        var root = reader.Map(YamlReader.ReadSingle(text, file, diagnostics), "the dynamic state", Keys);
        if (root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Error(SourceLocation.OfFile(file), "the dynamic state file is empty");
            }

            throw new RepoValidationException(diagnostics.Sorted());
        }

        var primary = reader.String(root["primary_dc"], "primary_dc");
        if (root["primary_dc"] is null)
        {
            reader.Missing(root, "primary_dc", "the dynamic state");
        }
        else if (primary is not null && !datacenters.Contains(primary))
        {
            diagnostics.Error(root["primary_dc"]!.Location, $"primary_dc '{primary}' is not a datacenter of the farm (allowed: {string.Join(", ", datacenters)})");
        }

        var readOnly = ImmutableSortedDictionary.CreateBuilder<string, string?>(StringComparer.Ordinal);
        foreach (var dc in datacenters)
        {
            readOnly[dc] = null;
        }

        foreach (var entry in reader.Map(root["read_only"], "read_only")?.Entries ?? [])
        {
            if (!datacenters.Contains(entry.Key))
            {
                diagnostics.Error(entry.KeyLocation, $"read_only names unknown datacenter '{entry.Key}' (allowed: {string.Join(", ", datacenters)})");
            }
            else if (entry.Value is ValueScalar { Type: ScalarType.Bool } b && b.AsBool() == false)
            {
                readOnly[entry.Key] = null;
            }
            else if (entry.Value is ValueScalar { Type: ScalarType.String } s && s.Text.Trim().Length > 0)
            {
                readOnly[entry.Key] = s.Text;
            }
            else
            {
                diagnostics.Error(entry.Value.Location, $"read_only.{entry.Key} must be false or a reason string, not {entry.Value.Describe()}");
            }
        }

        var enabled = reader.Bool(root["maintenance_enabled"], "maintenance_enabled");
        if (root["maintenance_enabled"] is null)
        {
            reader.Missing(root, "maintenance_enabled", "the dynamic state");
        }

        var reason = reader.String(root["maintenance_reason"], "maintenance_reason");
        if (diagnostics.HasErrors)
        {
            throw new RepoValidationException(diagnostics.Sorted());
        }

        return new DynamicState(primary!, readOnly.ToImmutable(), enabled!.Value, reason);
    }
}
