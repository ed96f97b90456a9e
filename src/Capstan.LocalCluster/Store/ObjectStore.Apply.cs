using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <content>Server-side apply: merge of the applied configuration, ownership and conflicts.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// Server-side apply. Creates the object when absent; otherwise merges the applied configuration, removes the fields
    /// this manager set before and no longer sets, and refuses (409) to change a field another manager owns unless forced.
    /// </summary>
    public JsonObject Apply(ResourceType type, string? ns, string name, JsonObject applied, string manager, bool force, bool statusOnly = false) =>
        ApplyCore(type, ns, name, applied, manager, force, statusOnly, dryRun: false);

    /// <summary>What <see cref="Apply"/> would store, without storing it (<c>?dryRun=All</c>).</summary>
    public JsonObject DryRunApply(ResourceType type, string? ns, string name, JsonObject applied, string manager, bool force) =>
        ApplyCore(type, ns, name, applied, manager, force, statusOnly: false, dryRun: true);

    private JsonObject ApplyCore(ResourceType type, string? ns, string name, JsonObject applied, string manager, bool force, bool statusOnly, bool dryRun)
    {
        CheckUrlNames(type, ns, name, applied, nameRequired: false);
        var body = (JsonObject)applied.DeepClone();
        if (body["metadata"] is not JsonObject meta)
        {
            meta = [];
            body["metadata"] = meta;
        }

        meta["name"] = name;
        if (type.Namespaced)
        {
            meta["namespace"] = ns;
        }

        Validate(type, ns, body);
        Admission.NormalizeApplied(type, body);
        lock (_lock)
        {
            EnsureEvents(type);
            if (!_objects.TryGetValue(Key(type, ns, name), out var live))
            {
                RequireNamespace(type, ns);
                var created = Prepare(type, ns, body);
                FieldOwnership.Write(created, [(manager, "Apply", FieldOwnership.Paths(body, includeStatus: statusOnly || !type.HasStatus))], type.ApiVersion, Now());
                if (dryRun)
                {
                    return created;
                }

                Commit(type, ns, name, created, "ADDED");
            }
            else
            {
                var next = ApplyToLive(type, live, body, manager, force, statusOnly);
                if (dryRun)
                {
                    return next;
                }

                if (CommitChange(type, ns, name, live, next))
                {
                    Wake(type);
                    return next;
                }
            }
        }

        return Notify(type, ns, name);
    }

    /// <summary>
    /// A field manager as a conflict names it: quoted, and for a manager that updated (not applied) the API version and
    /// time of its last write, <c>"kubectl-create" using apps/v1 at 2026-12-07T10:00:00Z</c>.
    /// </summary>
    private static string ManagerWords(JsonObject live, string manager, string operation)
    {
        var words = $"\"{manager}\"";
        var entry = (live["metadata"]?["managedFields"] as JsonArray ?? []).OfType<JsonObject>()
            .FirstOrDefault(e => e["manager"]?.GetValue<string>() == manager && (e["operation"]?.GetValue<string>() ?? "Update") == operation);
        if (entry?["subresource"]?.GetValue<string>() is { Length: > 0 } subresource)
        {
            words += $" with subresource \"{subresource}\"";
        }

        if (operation != "Update" || entry is null)
        {
            return words;
        }

        var apiVersion = entry["apiVersion"]?.GetValue<string>();
        return entry["time"]?.GetValue<string>() is { } time
            ? $"{words} using {apiVersion} at {DateTimeOffset.Parse(time, System.Globalization.CultureInfo.InvariantCulture).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)}"
            : $"{words} using {apiVersion}";
    }

    private JsonObject ApplyToLive(ResourceType type, JsonObject live, JsonObject body, string manager, bool force, bool statusOnly)
    {
        var name = live.Kube.Name;
        var newPaths = statusOnly
            ? FieldOwnership.Paths(new JsonObject { ["kind"] = type.Kind, ["status"] = body["status"]?.DeepClone() }, includeStatus: true)
            : FieldOwnership.Paths(body, includeStatus: !type.HasStatus);
        var owners = FieldOwnership.Read(live);

        // Conflicts are per field: another manager owns a value this apply would change.
        var conflicts = new List<(string Path, string Manager, string Words)>();
        foreach (var path in newPaths.Where(p => !FieldOwnership.IsItemPresence(p)))
        {
            foreach (var other in owners.Where(o => o.Manager != manager && o.Paths.Contains(path)))
            {
                if (!FieldOwnership.SameValue(live, body, path))
                {
                    conflicts.Add((path, other.Manager, ManagerWords(live, other.Manager, other.Operation)));
                }
            }
        }

        if (conflicts.Count > 0 && !force)
        {
            var causes = new JsonArray([.. conflicts.Select(c => (JsonNode)new JsonObject
            {
                ["reason"] = "FieldManagerConflict",
                ["message"] = $"conflict with {c.Words}",
                ["field"] = FieldOwnership.Display(c.Path),
            })]);

            // As kube-apiserver words it: one conflict on a line, several grouped by manager with a line per field.
            var message = conflicts.Count == 1
                ? $"conflict with {conflicts[0].Words}: {FieldOwnership.Display(conflicts[0].Path)}"
                : string.Concat(conflicts.GroupBy(c => c.Words).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => $"conflicts with {g.Key}:\n{string.Join("\n", g.Select(c => "- " + FieldOwnership.Display(c.Path)))}\n"));
            throw new ApiError(409, "Conflict", $"Apply failed with {conflicts.Count} conflict{(conflicts.Count == 1 ? string.Empty : "s")}: {message}", causes, type.Kind, name, type.Group.Length == 0 ? null : type.Group);
        }

        // Fields this manager applied before and no longer applies go, unless another manager owns them: values first,
        // then list items nobody else owns anything in.
        var next = (JsonObject)live.DeepClone();
        var others = owners.Where(o => o.Manager != manager).SelectMany(o => o.Paths).ToHashSet(StringComparer.Ordinal);
        var mine = owners.Where(o => o.Manager == manager && o.Operation == "Apply").SelectMany(o => o.Paths).ToHashSet(StringComparer.Ordinal);
        var dropped = mine.Except(newPaths).ToList();
        foreach (var path in dropped.Where(p => !FieldOwnership.IsItemPresence(p) && !others.Contains(p) && !FieldOwnership.IsItemKey(p)))
        {
            FieldOwnership.Remove(next, path);
        }

        foreach (var item in dropped.Where(FieldOwnership.IsItemPresence).Select(p => FieldOwnership.ItemOf(p)!))
        {
            if (!others.Any(p => FieldOwnership.Within(p, item)) && !newPaths.Any(p => FieldOwnership.Within(p, item)))
            {
                FieldOwnership.Remove(next, item);
            }
        }

        if (statusOnly)
        {
            if (body["status"] is JsonObject status)
            {
                if (next["status"] is not JsonObject liveStatus)
                {
                    next["status"] = status.DeepClone();
                }
                else
                {
                    FieldOwnership.Merge(type.SchemaKind, liveStatus, status);
                }
            }

            if (type.Custom is not null)
            {
                // A custom resource's status is judged by its schema too.
                Admission.Admit(type, next, live);
            }
        }
        else
        {
            // Without a status subresource, status is a field like any other.
            if (type.HasStatus)
            {
                body.Remove("status");
            }

            FieldOwnership.Merge(type.SchemaKind, next, body);
            Admission.Admit(type, next, live);
        }

        // Forced fields change hands; everyone else keeps what they own of what is still there.
        var updated = owners
            .Where(o => !(o.Manager == manager && o.Operation == "Apply"))
            .Select(o => (o.Manager, o.Operation, new HashSet<string>(
                o.Paths.Except(newPaths.Where(p => conflicts.Any(c => c.Path == p && c.Manager == o.Manager))).Where(p => FieldOwnership.Get(next, p) is not null),
                StringComparer.Ordinal)))
            .Append((manager, "Apply", newPaths))
            .ToList();
        FieldOwnership.Write(next, updated, type.ApiVersion, Now());
        BumpGeneration(type, live, next);
        return next;
    }
}
