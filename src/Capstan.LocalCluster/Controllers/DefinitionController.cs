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

    /// <summary>Why a definition's names cannot be accepted (a built-in resource or an older definition holds them), or null.</summary>
    private static string? Conflict(JsonObject crd, List<JsonObject> all)
    {
        var group = Json.Str(crd["spec"]?["group"]) ?? string.Empty;
        var plural = Json.Str(crd["spec"]?["names"]?["plural"]) ?? string.Empty;
        var kind = Json.Str(crd["spec"]?["names"]?["kind"]) ?? string.Empty;
        if (ResourceTypes.All.Any(t => t.Group == group && (t.Plural == plural || t.Kind == kind)))
        {
            return $"\"{plural}\" is already in use";
        }

        var older = all.Where(o => Json.Name(o) != Json.Name(crd) && Json.Str(o["spec"]?["group"]) == group
            && string.CompareOrdinal(Json.Str(o["metadata"]?["creationTimestamp"]), Json.Str(crd["metadata"]?["creationTimestamp"])) <= 0);
        return older.Any(o => Json.Str(o["spec"]?["names"]?["kind"]) == kind) ? $"\"{kind}\" is already in use" : null;
    }

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
