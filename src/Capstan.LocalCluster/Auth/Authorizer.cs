using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Auth;

/// <summary>
/// RBAC as kube-apiserver's authorizer evaluates it: <c>system:masters</c> may do anything; anyone else may do what a
/// rule of a role bound to them allows: ClusterRoleBindings everywhere, RoleBindings (to a Role of their namespace
/// or to a ClusterRole) inside their namespace. Rules match verbs, API groups, resources and subresources
/// (<c>deployments/scale</c>, <c>*/scale</c>), resource names, and (cluster roles only) non-resource URLs.
/// </summary>
internal sealed class Authorizer(ObjectStore store)
{
    private static readonly ResourceType ClusterRoles = ResourceTypes.ByKind("ClusterRole")!;
    private static readonly ResourceType ClusterRoleBindings = ResourceTypes.ByKind("ClusterRoleBinding")!;
    private static readonly ResourceType Roles = ResourceTypes.ByKind("Role")!;
    private static readonly ResourceType RoleBindings = ResourceTypes.ByKind("RoleBinding")!;

    /// <summary>True when the user may make the request.</summary>
    public bool Allows(UserInfo user, RequestInfo request)
    {
        if (user.IsMaster)
        {
            return true;
        }

        foreach (var binding in store.List(ClusterRoleBindings, null).Items)
        {
            if (Binds(binding, user, bindingNamespace: null) &&
                RoleRef(binding) is ("ClusterRole", { } role) && store.Get(ClusterRoles, null, role) is { } clusterRole &&
                Rules(clusterRole).Any(rule => RuleAllows(rule, request, nonResourceUrls: true)))
            {
                return true;
            }
        }

        if (!request.IsResourceRequest || request.Namespace.Length == 0)
        {
            return false;
        }

        foreach (var binding in store.List(RoleBindings, request.Namespace).Items)
        {
            if (!Binds(binding, user, request.Namespace))
            {
                continue;
            }

            var role = RoleRef(binding) switch
            {
                ("ClusterRole", { } name) => store.Get(ClusterRoles, null, name),
                ("Role", { } name) => store.Get(Roles, request.Namespace, name),
                _ => null,
            };
            if (role is not null && Rules(role).Any(rule => RuleAllows(rule, request, nonResourceUrls: false)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The 403 kube-apiserver answers with, worded as it words it.</summary>
    public static ApiError Forbidden(UserInfo user, RequestInfo request)
    {
        if (!request.IsResourceRequest)
        {
            return new ApiError(403, "Forbidden", $"forbidden: User \"{user.Name}\" cannot {request.Verb} path \"{request.Path}\"");
        }

        var resource = request.Subresource.Length > 0 ? $"{request.Resource}/{request.Subresource}" : request.Resource;
        var scope = request.Namespace.Length > 0 ? $"in the namespace \"{request.Namespace}\"" : "at the cluster scope";
        var why = $"User \"{user.Name}\" cannot {request.Verb} resource \"{resource}\" in API group \"{request.ApiGroup}\" {scope}";
        var qualified = request.ApiGroup.Length > 0 ? $"{request.Resource}.{request.ApiGroup}" : request.Resource;
        var message = request.Name.Length > 0 ? $"{qualified} \"{request.Name}\" is forbidden: {why}" : $"{qualified} is forbidden: {why}";
        return new ApiError(403, "Forbidden", message, kind: request.Resource, name: request.Name.Length > 0 ? request.Name : null, group: request.ApiGroup);
    }

    private static bool Binds(JsonObject binding, UserInfo user, string? bindingNamespace)
    {
        foreach (var subject in (binding["subjects"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var name = subject["name"]?.GetValue<string>();
            var matches = subject["kind"]?.GetValue<string>() switch
            {
                "User" => name == user.Name,
                "Group" => name is not null && user.Groups.Contains(name),
                "ServiceAccount" => user.Name == $"system:serviceaccount:{subject["namespace"]?.GetValue<string>() ?? bindingNamespace}:{name}",
                _ => false,
            };
            if (matches)
            {
                return true;
            }
        }

        return false;
    }

    private static (string? Kind, string? Name) RoleRef(JsonObject binding) =>
        (binding["roleRef"]?["kind"]?.GetValue<string>(), binding["roleRef"]?["name"]?.GetValue<string>());

    private static IEnumerable<JsonObject> Rules(JsonObject role) => (role["rules"] as JsonArray ?? []).OfType<JsonObject>();

    private static bool RuleAllows(JsonObject rule, RequestInfo request, bool nonResourceUrls)
    {
        if (!Contains(rule["verbs"], request.Verb))
        {
            return false;
        }

        if (!request.IsResourceRequest)
        {
            return nonResourceUrls && Strings(rule["nonResourceURLs"]).Any(url =>
                url == "*" || url == request.Path || (url.EndsWith('*') && request.Path.StartsWith(url.TrimEnd('*'), StringComparison.Ordinal)));
        }

        if (!Contains(rule["apiGroups"], request.ApiGroup))
        {
            return false;
        }

        var resources = Strings(rule["resources"]).ToList();
        var combined = request.Subresource.Length > 0 ? $"{request.Resource}/{request.Subresource}" : request.Resource;
        if (!resources.Contains("*") && !resources.Contains(combined) &&
            !(request.Subresource.Length > 0 && resources.Contains("*/" + request.Subresource)))
        {
            return false;
        }

        var names = Strings(rule["resourceNames"]).ToList();
        return names.Count == 0 || (request.Name.Length > 0 && names.Contains(request.Name));
    }

    private static bool Contains(JsonNode? list, string value) => Strings(list).Any(s => s == "*" || s == value);

    private static IEnumerable<string> Strings(JsonNode? list) =>
        (list as JsonArray ?? []).Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>();
}
