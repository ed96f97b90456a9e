using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.Core.Tests;

/// <summary>Which nodes a pod template admits: taints against tolerations, required node affinity against labels.</summary>
public sealed class NodeMatchingTests
{
    private static JsonObject Node(string name, string labels, string taints = "[]") => JsonNode.Parse(
        $$$"""{"metadata":{"name":"{{{name}}}","labels":{{{labels}}}},"spec":{"taints":{{{taints}}}}}""")!.AsObject();

    private static JsonObject Required(string terms) => JsonNode.Parse($$$"""{"nodeSelectorTerms":{{{terms}}}}""")!.AsObject();

    [Fact]
    public void Required_node_affinity_is_an_or_of_terms_each_an_and_of_expressions()
    {
        var web = Node("n1", """{"pool":"web","zone":"a","gen":"5"}""");
        var api = Node("n2", """{"pool":"api","zone":"b"}""");
        Assert.True(Affinity.Admits(web, null));
        Assert.True(Affinity.Admits(web, Required("""[{"matchExpressions":[{"key":"pool","operator":"In","values":["web","job"]},{"key":"zone","operator":"Exists"}]}]""")));
        Assert.False(Affinity.Admits(api, Required("""[{"matchExpressions":[{"key":"pool","operator":"In","values":["web","job"]}]}]""")));
        Assert.True(Affinity.Admits(api, Required("""[{"matchExpressions":[{"key":"pool","operator":"In","values":["web"]}]},{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["a"]}]}]""")));
        Assert.False(Affinity.Admits(web, Required("""[{"matchExpressions":[{"key":"gen","operator":"Gt","values":["5"]}]}]""")));
        Assert.True(Affinity.Admits(web, Required("""[{"matchExpressions":[{"key":"gen","operator":"Lt","values":["6"]},{"key":"gpu","operator":"DoesNotExist"}]}]""")));
        Assert.False(Affinity.Admits(api, Required("""[{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]""")));
    }

    [Fact]
    public void A_node_is_admitted_when_every_scheduling_taint_is_tolerated()
    {
        var tainted = Node("n1", "{}", """[{"key":"dedicated","value":"mw","effect":"NoSchedule"},{"key":"soft","effect":"PreferNoSchedule"}]""");
        Assert.False(Taints.Admits(tainted, null));
        Assert.True(Taints.Admits(tainted, JsonNode.Parse("""[{"key":"dedicated","operator":"Equal","value":"mw","effect":"NoSchedule"}]""")!.AsArray()));
        Assert.True(Taints.Admits(tainted, JsonNode.Parse("""[{"operator":"Exists"}]""")!.AsArray()));
        Assert.False(Taints.Admits(tainted, JsonNode.Parse("""[{"key":"dedicated","value":"other"}]""")!.AsArray()));
    }
}
