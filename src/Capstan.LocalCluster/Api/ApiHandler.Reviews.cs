using System.Text.Json.Nodes;
using Capstan.LocalCluster.Auth;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <content>
/// The self-reviews of authorization.k8s.io/v1, as kube-apiserver answers them: may I do this
/// (SelfSubjectAccessReview, <c>kubectl auth can-i</c>), and what may I do in a namespace (SelfSubjectRulesReview,
/// <c>kubectl auth can-i --list</c>). Both judge the caller by the same RBAC that authorizes their requests; nothing
/// is stored.
/// </content>
internal sealed partial class ApiHandler
{
    private async Task SelfSubjectAccessReviewAsync(HttpContext context)
    {
        var review = await ReadReviewAsync(context, "SelfSubjectAccessReview");
        var user = (UserInfo)context.Items[UserKey]!;
        var spec = review["spec"] as JsonObject ?? [];
        RequestInfo asked;
        if (spec["resourceAttributes"] is JsonObject resource)
        {
            asked = new RequestInfo(true, Text(resource, "verb"), string.Empty, Text(resource, "group"), Text(resource, "namespace"), Text(resource, "resource"), Text(resource, "subresource"), Text(resource, "name"));
        }
        else if (spec["nonResourceAttributes"] is JsonObject nonResource)
        {
            asked = new RequestInfo(false, Text(nonResource, "verb"), Text(nonResource, "path"));
        }
        else
        {
            throw new ApiError(422, "Invalid", "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
                new JsonArray(new JsonObject { ["reason"] = "FieldValueInvalid", ["message"] = "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified", ["field"] = "spec.resourceAttributes" }),
                "SelfSubjectAccessReview", string.Empty, Discovery.Reviews);
        }

        var allowed = _authorizer.Allows(user, asked);
        review["status"] = allowed
            ? new JsonObject { ["allowed"] = true, ["reason"] = user.IsMaster ? "the user is in system:masters" : "allowed by RBAC" }
            : new JsonObject { ["allowed"] = false };
        await WriteAsync(context, 201, review);
    }

    private async Task SelfSubjectRulesReviewAsync(HttpContext context)
    {
        var review = await ReadReviewAsync(context, "SelfSubjectRulesReview");
        var user = (UserInfo)context.Items[UserKey]!;
        var ns = review["spec"]?["namespace"]?.GetValue<string>() ?? string.Empty;
        var resourceRules = new JsonArray();
        var nonResourceRules = new JsonArray();
        foreach (var rule in _authorizer.RulesFor(user, ns))
        {
            if (rule["nonResourceURLs"] is JsonArray { Count: > 0 } urls)
            {
                nonResourceRules.Add(new JsonObject { ["verbs"] = rule["verbs"]?.DeepClone(), ["nonResourceURLs"] = urls.DeepClone() });
            }

            if (rule["resources"] is JsonArray { Count: > 0 })
            {
                var copy = new JsonObject { ["verbs"] = rule["verbs"]?.DeepClone(), ["apiGroups"] = rule["apiGroups"]?.DeepClone(), ["resources"] = rule["resources"]!.DeepClone() };
                if (rule["resourceNames"] is JsonArray { Count: > 0 } names)
                {
                    copy["resourceNames"] = names.DeepClone();
                }

                resourceRules.Add(copy);
            }
        }

        review["status"] = new JsonObject { ["resourceRules"] = resourceRules, ["nonResourceRules"] = nonResourceRules, ["incomplete"] = false };
        await WriteAsync(context, 201, review);
    }

    /// <summary>A review's body, checked to be the kind the URL names, with the metadata kube-apiserver answers.</summary>
    private static async Task<JsonObject> ReadReviewAsync(HttpContext context, string kind)
    {
        var review = await ReadBodyAsync(context);
        if (review["kind"]?.GetValue<string>() is { } said && said != kind)
        {
            throw ApiError.BadRequest($"the kind of the object ({said}) does not match the URL ({kind})");
        }

        review["kind"] = kind;
        review["apiVersion"] = Discovery.Reviews + "/v1";
        review["metadata"] = new JsonObject { ["creationTimestamp"] = null };
        return review;
    }

    private static string Text(JsonObject o, string key) => o[key]?.GetValue<string>() ?? string.Empty;
}
