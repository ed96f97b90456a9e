using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// What kube-controller-manager puts in every namespace: the <c>default</c> ServiceAccount (serviceaccount controller)
/// and the <c>kube-root-ca.crt</c> ConfigMap with the cluster's CA (root-ca-cert-publisher), created when the namespace
/// is, and again when someone deletes them. Clients that wait for either (helm, client-go's informers) find them.
/// </summary>
internal sealed class NamespaceController(ObjectStore store, Func<string?> authorityPem)
{
    /// <summary>The ConfigMap the CA is published in.</summary>
    public const string RootCaConfigMap = "kube-root-ca.crt";

    private static readonly ResourceType Namespaces = ResourceTypes.ByKind("Namespace")!;
    private static readonly ResourceType ServiceAccounts = ResourceTypes.ByKind("ServiceAccount")!;
    private static readonly ResourceType ConfigMaps = ResourceTypes.ByKind("ConfigMap")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        var names = complete
            ? changes.Where(e => (e.Type == "ADDED" && e.Resource == Namespaces)
                    || (e.Type == "DELETED" && ((e.Resource == ServiceAccounts && Json.Name(e.Object) == "default") || (e.Resource == ConfigMaps && Json.Name(e.Object) == RootCaConfigMap))))
                .Select(e => e.Resource == Namespaces ? Json.Name(e.Object) : Json.Namespace(e.Object)!)
                .Distinct(StringComparer.Ordinal)
            : store.ListShared(Namespaces, null).Items.Select(Json.Name);
        foreach (var name in names.ToList())
        {
            Ensure(name);
        }
    }

    private void Ensure(string ns)
    {
        if (store.Get(Namespaces, null, ns) is not { } namespaceObject || Json.Deleting(namespaceObject))
        {
            return;
        }

        try
        {
            if (store.Get(ServiceAccounts, ns, "default") is null)
            {
                store.Create(ServiceAccounts, ns, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "default" } }, "kube-controller-manager");
            }

            if (authorityPem() is { } pem && store.Get(ConfigMaps, ns, RootCaConfigMap) is null)
            {
                store.Create(ConfigMaps, ns, new JsonObject
                {
                    ["metadata"] = new JsonObject { ["name"] = RootCaConfigMap, ["annotations"] = new JsonObject { ["kubernetes.io/description"] = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." } },
                    ["data"] = new JsonObject { ["ca.crt"] = pem },
                }, "kube-controller-manager");
            }
        }
        catch (ApiError raced) when (raced.Code is 409 or 403 or 404)
        {
            // Created meanwhile (409), or the namespace started terminating (403/404): nothing to do.
        }
    }
}
