using System.Text.Json.Nodes;

namespace Capstan.Kubernetes.Tests;

/// <summary>How a rollout is judged from the Deployment, its ReplicaSets and pods, without a server.</summary>
public sealed class RolloutStatusTests
{
    private static JsonObject Template(string image, string? hash = null)
    {
        var labels = new JsonObject { ["app"] = "web" };
        if (hash is not null)
        {
            labels["pod-template-hash"] = hash;
        }

        return new JsonObject
        {
            ["metadata"] = new JsonObject { ["labels"] = labels },
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "main", ["image"] = image }) },
        };
    }

    private static JsonObject ReplicaSet(string name, string image, string revision, int replicas, int available) => new()
    {
        ["metadata"] = new JsonObject { ["name"] = name, ["uid"] = name, ["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = revision } },
        ["spec"] = new JsonObject { ["replicas"] = replicas, ["template"] = Template(image, name[^5..]) },
        ["status"] = new JsonObject { ["replicas"] = replicas, ["availableReplicas"] = available },
    };

    private static JsonObject Deployment(string image, string revision) => new()
    {
        ["metadata"] = new JsonObject { ["name"] = "web", ["generation"] = 3, ["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = revision } },
        ["spec"] = new JsonObject { ["replicas"] = 2, ["template"] = Template(image) },
        ["status"] = new JsonObject { ["observedGeneration"] = 3, ["replicas"] = 2, ["updatedReplicas"] = 2, ["availableReplicas"] = 2 },
    };

    [Fact]
    public void The_new_replica_set_is_the_one_whose_template_matches_even_when_the_revision_annotation_lags()
    {
        // Back on the first template: its ReplicaSet carries revision 3, the Deployment still says 2.
        var sets = new[] { ReplicaSet("web-aaaaa", "web:1", "3", 2, 2), ReplicaSet("web-bbbbb", "web:2", "2", 0, 0) };
        var status = RolloutStatus.From(Deployment("web:1", "2"), sets, []);
        Assert.Equal("web-aaaaa", status.NewReplicaSet);
        Assert.True(status.Done, status.Message);
    }

    [Fact]
    public void A_template_no_replica_set_carries_yet_is_not_done()
    {
        // The controller has not made the ReplicaSet of the new template yet; the old one is fully available.
        var sets = new[] { ReplicaSet("web-aaaaa", "web:1", "1", 2, 2) };
        var status = RolloutStatus.From(Deployment("web:3", "1"), sets, []);
        Assert.Null(status.NewReplicaSet);
        Assert.False(status.Done);
        Assert.Equal(0, status.Available);
    }

    [Fact]
    public void A_deadline_condition_left_from_an_earlier_generation_does_not_fail_the_next_rollout()
    {
        var deployment = Deployment("web:2", "1");
        deployment["metadata"]!["generation"] = 4;
        deployment["status"]!["conditions"] = new JsonArray(new JsonObject { ["type"] = "Progressing", ["status"] = "False", ["reason"] = "ProgressDeadlineExceeded" });
        var sets = new[] { ReplicaSet("web-aaaaa", "web:1", "1", 2, 2) };
        var stale = RolloutStatus.From(deployment, sets, []);
        Assert.False(stale.Failed);
        Assert.False(stale.Done);
        Assert.Contains("spec update to be observed", stale.Message, StringComparison.Ordinal);

        deployment["status"]!["observedGeneration"] = 4;
        Assert.True(RolloutStatus.From(deployment, sets, []).Failed);
    }

    [Fact]
    public void A_paused_deployment_is_a_clear_failure_not_an_endless_wait()
    {
        var deployment = Deployment("web:2", "1");
        deployment["spec"]!["paused"] = true;
        var status = RolloutStatus.From(deployment, [ReplicaSet("web-aaaaa", "web:1", "1", 2, 2)], []);
        Assert.True(status.Failed);
        Assert.False(status.Done);
        Assert.Equal("deployment \"web\" is paused (spec.paused), so it will not roll out; resume it (kubectl rollout resume deployment/web) and deploy again", status.Message);
    }
}
