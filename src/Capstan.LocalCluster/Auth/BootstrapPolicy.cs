using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Auth;

/// <summary>
/// The default roles and bindings every cluster starts with, after kube-apiserver's bootstrap policy:
/// <c>cluster-admin</c> (bound to <c>system:masters</c>), the user-facing <c>admin</c>, <c>edit</c> and <c>view</c>
/// (for the resources served here), and the discovery and public-info roles that let any authenticated user read
/// <c>/api</c>, <c>/apis</c>, <c>/openapi</c> and <c>/version</c>.
/// </summary>
internal static class BootstrapPolicy
{
    private static readonly string[] Read = ["get", "list", "watch"];
    private static readonly string[] Write = ["create", "delete", "deletecollection", "patch", "update"];

    /// <summary>The ClusterRoles.</summary>
    public static IEnumerable<JsonObject> ClusterRoles()
    {
        yield return Role("cluster-admin",
            Rule(["*"], ["*"], ["*"]),
            NonResource(["*"], ["*"]));
        yield return Role("system:discovery",
            NonResource(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]));
        yield return Role("system:public-info-viewer",
            NonResource(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"]));
        yield return Role("system:basic-user",
            Rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]));
        yield return Role("view", ViewRules().ToArray());
        yield return Role("edit", [.. EditRules(), .. ViewRules()]);
        yield return Role("admin", [
            .. EditRules(),
            .. ViewRules(),
            Rule([.. Read, .. Write], ["rbac.authorization.k8s.io"], ["roles", "rolebindings"])]);
    }

    /// <summary>The ClusterRoleBindings.</summary>
    public static IEnumerable<JsonObject> ClusterRoleBindings()
    {
        yield return Binding("cluster-admin", "system:masters");
        yield return Binding("system:discovery", "system:authenticated");
        yield return Binding("system:basic-user", "system:authenticated");
        yield return Binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated");
    }

    private static IEnumerable<JsonObject> ViewRules()
    {
        yield return Rule(Read, [string.Empty], ["configmaps", "endpoints", "events", "limitranges", "namespaces", "namespaces/status", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods", "pods/log", "pods/status", "replicationcontrollers", "replicationcontrollers/status", "serviceaccounts", "services", "services/status"]);
        yield return Rule(Read, ["apps"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/status"]);
        yield return Rule(Read, ["discovery.k8s.io"], ["endpointslices"]);
        yield return Rule(Read, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]);
        yield return Rule(Read, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]);
        yield return Rule(Read, ["networking.k8s.io"], ["networkpolicies"]);
    }

    private static IEnumerable<JsonObject> EditRules()
    {
        yield return Rule([.. Read, .. Write], [string.Empty], ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "replicationcontrollers", "secrets", "serviceaccounts", "services"]);
        yield return Rule([.. Read, .. Write], ["apps"], ["daemonsets", "deployments", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets"]);
        yield return Rule([.. Read, .. Write], ["discovery.k8s.io"], ["endpointslices"]);
        yield return Rule([.. Read, .. Write], ["autoscaling"], ["horizontalpodautoscalers"]);
        yield return Rule([.. Read, .. Write], ["batch"], ["cronjobs", "jobs"]);
        yield return Rule([.. Read, .. Write], ["networking.k8s.io"], ["networkpolicies"]);
    }

    private static JsonObject Role(string name, params JsonObject[] rules) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRole",
        ["metadata"] = new JsonObject
        {
            ["name"] = name,
            ["labels"] = new JsonObject { ["kubernetes.io/bootstrapping"] = "rbac-defaults" },
        },
        ["rules"] = new JsonArray([.. rules]),
    };

    private static JsonObject Binding(string role, params string[] groups) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRoleBinding",
        ["metadata"] = new JsonObject
        {
            ["name"] = role,
            ["labels"] = new JsonObject { ["kubernetes.io/bootstrapping"] = "rbac-defaults" },
        },
        ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = role },
        ["subjects"] = new JsonArray([.. groups.Select(g => (JsonNode)new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "Group", ["name"] = g })]),
    };

    private static JsonObject Rule(string[] verbs, string[] groups, string[] resources) => new()
    {
        ["apiGroups"] = Array(groups),
        ["resources"] = Array(resources),
        ["verbs"] = Array(verbs),
    };

    private static JsonObject NonResource(string[] verbs, string[] urls) => new()
    {
        ["nonResourceURLs"] = Array(urls),
        ["verbs"] = Array(verbs),
    };

    private static JsonArray Array(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
}
