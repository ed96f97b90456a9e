namespace Capstan.LocalCluster.Auth;

/// <summary>
/// What a request asks to do, as kube-apiserver's RequestInfoFactory reads it from the method and path: a resource
/// request (verb, API group, namespace, resource, subresource, name) or a non-resource one (verb and path).
/// </summary>
public sealed record RequestInfo(
    bool IsResourceRequest,
    string Verb,
    string Path,
    string ApiGroup = "",
    string Namespace = "",
    string Resource = "",
    string Subresource = "",
    string Name = "")
{
    /// <summary>A boolean query parameter, read as Go's strconv.ParseBool reads it (the Python client sends <c>True</c>).</summary>
    public static bool IsTrue(string? value) => value is "1" or "t" or "T" or "true" or "TRUE" or "True";

    /// <summary>Reads a request.</summary>
    public static RequestInfo Parse(string method, string path, Func<string, string?> query)
    {
        var parts = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        var nonResource = new RequestInfo(false, method.ToLowerInvariant(), path);
        string group;
        string[] rest;
        switch (parts)
        {
            case ["api", _, .. var r]:
                group = string.Empty;
                rest = r;
                break;
            case ["apis", var g, _, .. var r]:
                group = g;
                rest = r;
                break;
            default:
                return nonResource;
        }

        if (rest.Length == 0)
        {
            // A group version's discovery document.
            return nonResource;
        }

        var ns = string.Empty;
        if (rest[0] == "namespaces" && rest.Length > 1)
        {
            ns = rest[1];
            if (rest.Length > 2 && rest[2] is not ("status" or "finalize"))
            {
                rest = rest[2..];
            }
        }

        var name = rest.Length >= 2 ? rest[1] : string.Empty;
        var subresource = rest.Length >= 3 ? rest[2] : string.Empty;
        var verb = method switch
        {
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => name.Length == 0 ? "deletecollection" : "delete",
            "GET" or "HEAD" when name.Length > 0 => "get",
            "GET" or "HEAD" => IsTrue(query("watch")) ? "watch" : "list",
            _ => method.ToLowerInvariant(),
        };

        // A list or watch of one object by field selector is authorised as that object (kubectl get pod X -w).
        if (verb is "list" or "watch" && query("fieldSelector") is { } selector &&
            selector.StartsWith("metadata.name=", StringComparison.Ordinal) && !selector.Contains(',', StringComparison.Ordinal))
        {
            name = selector["metadata.name=".Length..];
        }

        return new RequestInfo(true, verb, path, group, ns, rest[0], subresource, name);
    }
}
