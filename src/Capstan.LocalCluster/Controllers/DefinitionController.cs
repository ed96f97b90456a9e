using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// The API server's controllers for CustomResourceDefinitions: a definition whose names no other resource holds is
/// accepted and established (its resource is served from then on); one being deleted has its custom resources
/// deleted first, then loses its cleanup finalizer and goes.
/// </summary>
internal sealed class DefinitionController(ObjectStore store)
{
    private static readonly ResourceType Definitions = ResourceTypes.ByKind("CustomResourceDefinition")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        if (complete && !changes.Any(e => e.Resource == Definitions) && !_cleaning)
        {
            return;
        }

        _cleaning = false;
        var all = store.ListShared(Definitions, null).Items;
        foreach (var crd in all)
        {
            try
            {
                if (Json.Deleting(crd))
                {
                    CleanUp(crd);
                }
                else
                {
                    Establish(crd, all);
                }
            }
            catch (ApiError raced) when (raced.Code is 404 or 409)
            {
                // Changed or gone meanwhile: the next change brings it back here.
            }
        }
    }

    /// <summary>True while a deleted definition still has custom resources, so the next pass looks again.</summary>
    private bool _cleaning;

    private void Establish(JsonObject crd, List<JsonObject> all)
    {
        var now = store.Clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var status = Conflict(crd, all) is { } conflict ? Store.Definitions.ConflictStatus(conflict, now) : Store.Definitions.EstablishedStatus(crd, now);
        if (Same(crd["status"] as JsonObject, status))
        {
            return;
        }

        var next = (JsonObject)crd.DeepClone();
        next["status"] = status;
        store.Update(Definitions, null, Json.Name(crd), next, statusOnly: true, "kube-apiserver");
    }

    /// <summary>Whether two statuses say the same, their conditions' times aside.</summary>
    private static bool Same(JsonObject? current, JsonObject wanted)
    {
        if (current is null)
        {
            return false;
        }

        var a = (JsonObject)current.DeepClone();
        var b = (JsonObject)wanted.DeepClone();
        foreach (var condition in (a["conditions"] as JsonArray ?? []).Concat(b["conditions"] as JsonArray ?? []).OfType<JsonObject>())
        {
            condition.Remove("lastTransitionTime");
        }

        return JsonNode.DeepEquals(a, b);
    }

    /// <summary>
    /// Why a definition's names cannot be accepted, or null: a built-in resource of its group holds them, or another
    /// definition of the group does (one that holds them already, or an older one; the name breaks a tie). Names once
    /// accepted are kept, as kube-apiserver keeps them.
    /// </summary>
    private static string? Conflict(JsonObject crd, List<JsonObject> all)
    {
        var group = Json.Str(crd["spec"]?["group"]) ?? string.Empty;
        var plural = Json.Str(crd["spec"]?["names"]?["plural"]) ?? string.Empty;
        var kind = Json.Str(crd["spec"]?["names"]?["kind"]) ?? string.Empty;
        if (ResourceTypes.All.Any(t => t.Group == group && (t.Plural == plural || t.Kind == kind)))
        {
            return $"\"{plural}\" is already in use";
        }

        if (Accepted(crd))
        {
            return null;
        }

        var holder = all.FirstOrDefault(o => Json.Name(o) != Json.Name(crd) && Json.Str(o["spec"]?["group"]) == group
            && Json.Str(o["spec"]?["names"]?["kind"]) == kind && (Accepted(o) || Older(o, crd)));
        return holder is null ? null : $"\"{kind}\" is already in use";
    }

    private static bool Accepted(JsonObject crd) =>
        ((crd["status"] as JsonObject)?["conditions"] as JsonArray ?? []).OfType<JsonObject>()
            .Any(c => Json.Str(c["type"]) == "NamesAccepted" && Json.Str(c["status"]) == "True");

    private static bool Older(JsonObject a, JsonObject b) =>
        (string.CompareOrdinal(Json.Str(a["metadata"]?["creationTimestamp"]), Json.Str(b["metadata"]?["creationTimestamp"])) is var byTime && byTime != 0
            ? byTime : string.CompareOrdinal(Json.Name(a), Json.Name(b))) < 0;

    private void CleanUp(JsonObject crd)
    {
        var finalizers = crd["metadata"]?["finalizers"] as JsonArray ?? [];
        if (!finalizers.Any(f => Json.Str(f) == Store.Definitions.CleanupFinalizer))
        {
            return;
        }

        if (store.Types.All.FirstOrDefault(t => t.Custom?.Definition == Json.Name(crd)) is { } type)
        {
            var instances = store.ListShared(type, null).Items;
            foreach (var instance in instances.Where(i => !Json.Deleting(i)))
            {
                store.Delete(type, Json.Namespace(instance), Json.Name(instance), "Background");
            }

            if (instances.Count > 0)
            {
                _cleaning = true;
                return;
            }
        }

        var remaining = new JsonArray([.. finalizers.Where(f => Json.Str(f) != Store.Definitions.CleanupFinalizer).Select(f => f?.DeepClone())]);
        store.MergePatch(Definitions, null, Json.Name(crd), new JsonObject { ["metadata"] = new JsonObject { ["finalizers"] = remaining.Count == 0 ? null : remaining } }, false, "kube-apiserver");
    }
}
