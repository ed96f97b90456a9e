using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Api;

/// <summary>The discovery documents kubectl and clients read first.</summary>
internal static class Discovery
{
    private static readonly string[] Verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    /// <summary>What a kind serves: every verb, but namespaces have no deletecollection (as on kube-apiserver).</summary>
    private static IEnumerable<string> VerbsOf(string kind) => kind == "Namespace" ? Verbs.Where(v => v != "deletecollection") : Verbs;

    public static JsonObject CoreVersions(string address) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = address }),
    };

    public static JsonObject Groups(ResourceRegistry types) => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray([.. types.Groups.Append(Reviews).Select(g => (JsonNode)Group(types, g)!)]),
    };

    /// <summary>The group of the access reviews (create-only: nothing is stored).</summary>
    public const string Reviews = "authorization.k8s.io";

    /// <summary>The reviews a user asks about themselves: <c>kubectl auth can-i</c> and <c>can-i --list</c>.</summary>
    private static readonly (string Plural, string Kind)[] ReviewResources = [("selfsubjectaccessreviews", "SelfSubjectAccessReview"), ("selfsubjectrulesreviews", "SelfSubjectRulesReview")];

    /// <summary>The reviews' resource list.</summary>
    public static JsonObject ReviewResourceList() => new()
    {
        ["kind"] = "APIResourceList",
        ["apiVersion"] = "v1",
        ["groupVersion"] = Reviews + "/v1",
        ["resources"] = new JsonArray([.. ReviewResources.Select(r => (JsonNode)new JsonObject
        {
            ["name"] = r.Plural,
            ["singularName"] = r.Kind.ToLowerInvariant(),
            ["namespaced"] = false,
            ["kind"] = r.Kind,
            ["verbs"] = new JsonArray("create"),
        })]),
    };

    public static JsonObject? Group(ResourceRegistry types, string group)
    {
        var versions = group == Reviews ? ["v1"] : types.All.Where(r => r.Group == group).Select(r => r.Version).Distinct().ToList();
        if (versions.Count == 0)
        {
            return null;
        }

        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = group,
            ["versions"] = new JsonArray([.. versions.Select(v => (JsonNode)new JsonObject { ["groupVersion"] = $"{group}/{v}", ["version"] = v })]),
            ["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{group}/{versions[0]}", ["version"] = versions[0] },
        };
    }

    public static JsonObject Resources(ResourceRegistry types, string group, string version)
    {
        var resources = new JsonArray();
        foreach (var r in types.All.Where(r => r.Group == group && r.Version == version))
        {
            resources.Add(new JsonObject
            {
                ["name"] = r.Plural,
                ["singularName"] = r.Singular,
                ["namespaced"] = r.Namespaced,
                ["kind"] = r.Kind,
                ["verbs"] = new JsonArray([.. VerbsOf(r.Kind).Select(v => (JsonNode)JsonValue.Create(v))]),
                ["shortNames"] = new JsonArray([.. r.ShortNames.Select(s => (JsonNode)JsonValue.Create(s))]),
                ["categories"] = r.Custom is { } custom ? new JsonArray([.. custom.Categories.Select(c => (JsonNode)JsonValue.Create(c))])
                    : r.Kind is "Pod" or "Service" or "Deployment" or "ReplicaSet" or "Job" or "CronJob" or "HorizontalPodAutoscaler" ? new JsonArray("all") : new JsonArray(),
            });
            if (r.HasScale)
            {
                resources.Add(new JsonObject
                {
                    ["name"] = r.Plural + "/scale",
                    ["singularName"] = string.Empty,
                    ["namespaced"] = r.Namespaced,
                    ["group"] = "autoscaling",
                    ["version"] = "v1",
                    ["kind"] = "Scale",
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }

            if (r.HasStatus)
            {
                resources.Add(new JsonObject
                {
                    ["name"] = r.Plural + "/status",
                    ["singularName"] = string.Empty,
                    ["namespaced"] = r.Namespaced,
                    ["kind"] = r.Kind,
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };
    }
}
