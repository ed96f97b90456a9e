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

    /// <summary>
    /// The rules that apply to a user in a namespace (SelfSubjectRulesReview): those of every ClusterRole bound to them
    /// cluster-wide, and of every role bound to them in the namespace.
    /// </summary>
    public IReadOnlyList<JsonObject> RulesFor(UserInfo user, string ns)
    {
        var rules = new List<JsonObject>();
        foreach (var binding in store.List(ClusterRoleBindings, null).Items.Where(b => Binds(b, user, bindingNamespace: null)))
        {
            if (RoleRef(binding) is ("ClusterRole", { } role) && store.Get(ClusterRoles, null, role) is { } clusterRole)
            {
                rules.AddRange(Rules(clusterRole));
            }
        }

        foreach (var binding in ns.Length == 0 ? [] : store.List(RoleBindings, ns).Items.Where(b => Binds(b, user, ns)))
        {
            var role = RoleRef(binding) switch
            {
                ("ClusterRole", { } name) => store.Get(ClusterRoles, null, name),
                ("Role", { } name) => store.Get(Roles, ns, name),
                _ => null,
            };
            rules.AddRange(role is null ? [] : Rules(role));
        }

        return rules;
    }

    /// <summary>
    /// RBAC's escalation prevention for a Role, ClusterRole, RoleBinding or ClusterRoleBinding being written: a role may
    /// only hold rules its writer holds (in its namespace, or cluster-wide for a ClusterRole) unless the writer may
    /// <c>escalate</c> roles; a binding may only grant a role whose rules its writer holds unless the writer may
    /// <c>bind</c> it. Returns the 403 to answer with, or null.
    /// </summary>
    public ApiError? Escalation(UserInfo user, ResourceType type, string? ns, string name, JsonObject obj)
    {
        if (user.IsMaster)
        {
            return null;
        }

        var group = "rbac.authorization.k8s.io";
        IEnumerable<JsonObject> rules;
        switch (type.Kind)
        {
            case "Role" or "ClusterRole":
                if (Allows(user, new RequestInfo(true, "escalate", string.Empty, group, ns ?? string.Empty, type.Plural, string.Empty, name)))
                {
                    return null;
                }

                rules = Rules(obj);
                break;
            case "RoleBinding" or "ClusterRoleBinding":
                var (kind, roleName) = RoleRef(obj);
                var rolePlural = kind == "Role" ? "roles" : "clusterroles";
                if (roleName is null || Allows(user, new RequestInfo(true, "bind", string.Empty, group, kind == "Role" ? ns ?? string.Empty : string.Empty, rolePlural, string.Empty, roleName)))
                {
                    return null;
                }

                var role = kind == "Role" ? store.Get(Roles, ns, roleName) : store.Get(ClusterRoles, null, roleName);
                rules = role is null ? [] : Rules(role);
                break;
            default:
                return null;
        }

        var missing = new List<string>();
        foreach (var rule in rules)
        {
            foreach (var verb in Strings(rule["verbs"]))
            {
                var urls = Strings(rule["nonResourceURLs"]).ToList();
                foreach (var url in urls)
                {
                    if (!Allows(user, new RequestInfo(false, verb, url)))
                    {
                        missing.Add($"{{NonResourceURLs:[\"{url}\"], Verbs:[\"{verb}\"]}}");
                    }
                }

                foreach (var apiGroup in urls.Count > 0 ? [] : Strings(rule["apiGroups"]))
                {
                    foreach (var resource in Strings(rule["resources"]))
                    {
                        var parts = resource.Split('/', 2);
                        var names = Strings(rule["resourceNames"]).DefaultIfEmpty(string.Empty);
                        foreach (var resourceName in names)
                        {
                            if (!Allows(user, new RequestInfo(true, verb, string.Empty, apiGroup, ns ?? string.Empty, parts[0], parts.Length > 1 ? parts[1] : string.Empty, resourceName)))
                            {
                                missing.Add($"{{APIGroups:[\"{apiGroup}\"], Resources:[\"{resource}\"]{(resourceName.Length > 0 ? $", ResourceNames:[\"{resourceName}\"]" : string.Empty)}, Verbs:[\"{verb}\"]}}");
                            }
                        }
                    }
                }
            }
        }

        if (missing.Count == 0)
        {
            return null;
        }

        var groups = string.Join(",", user.Groups.Select(g => $"\"{g}\""));
        return new ApiError(403, "Forbidden",
            $"{type.Plural}.{group} \"{name}\" is forbidden: user \"{user.Name}\" (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{string.Join("\n", missing.Distinct())}",
            kind: type.Plural, name: name, group: group);
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
