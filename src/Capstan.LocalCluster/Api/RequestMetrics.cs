using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Capstan.LocalCluster.Auth;

namespace Capstan.LocalCluster.Api;

/// <summary>
/// Resource requests counted as kube-apiserver's <c>apiserver_request_total</c> counts them: by the reported verb (GET,
/// LIST, WATCH, POST, PUT, PATCH, APPLY for server-side apply, DELETE), group, resource, subresource and status code.
/// </summary>
public sealed class RequestMetrics
{
    private readonly ConcurrentDictionary<(string Verb, string Group, string Resource, string Subresource, string Scope, int Code), long> _counts = new();

    /// <summary>Counts one request.</summary>
    public void Count(RequestInfo request, string? contentType, int code) =>
        _counts.AddOrUpdate((ReportedVerb(request, contentType), request.ApiGroup, request.Resource, request.Subresource, Scope(request), code), 1, (_, n) => n + 1);

    /// <summary>How many requests of a verb (as reported) and resource were served, whatever their answer.</summary>
    public long Total(string verb, string resource) => _counts.Where(kv => kv.Key.Verb == verb && kv.Key.Resource == resource).Sum(kv => kv.Value);

    /// <summary>How many requests of a verb had a scope (<c>cluster</c>, <c>namespace</c> or <c>resource</c>), whatever their resource.</summary>
    public long TotalInScope(string verb, string scope) => _counts.Where(kv => kv.Key.Verb == verb && kv.Key.Scope == scope).Sum(kv => kv.Value);

    /// <summary>The counts in the Prometheus text format.</summary>
    public string Text()
    {
        var text = new StringBuilder("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, resource, subresource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        foreach (var (key, count) in _counts.OrderBy(kv => kv.Key.ToString(), StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"apiserver_request_total{{code=\"{key.Code}\",group=\"{key.Group}\",resource=\"{key.Resource}\",scope=\"{key.Scope}\",subresource=\"{key.Subresource}\",verb=\"{key.Verb}\"}} {count}\n");
        }

        return text.ToString();
    }

    /// <summary>As kube-apiserver labels it: one object, a namespace's collection, or the whole cluster's.</summary>
    private static string Scope(RequestInfo request) =>
        request.Name.Length > 0 ? "resource" : request.Namespace.Length > 0 ? "namespace" : "cluster";

    private static string ReportedVerb(RequestInfo request, string? contentType) => request.Verb switch
    {
        "create" => "POST",
        "update" => "PUT",
        "patch" when contentType?.StartsWith("application/apply-patch", StringComparison.Ordinal) == true => "APPLY",
        "deletecollection" => "DELETE",
        _ => request.Verb.ToUpperInvariant(),
    };
}
