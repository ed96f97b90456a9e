using System.Text.Json.Nodes;
using Capstan.Kubernetes.Watching;
using Readiness = Capstan.Kubernetes.Watching.Readiness;

namespace Capstan.Kubernetes.Tests;

/// <summary>Workload kinds judged from their status alone, as kubectl rollout status and kstatus judge them.</summary>
public sealed class ObjectReadinessTests
{
    [Theory]
    [InlineData("""{"kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":1,"updatedReplicas":3,"readyReplicas":3}}""", Readiness.InProgress, "waiting for the controller to see generation 2 (it has seen 1)")]
    [InlineData("""{"kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":2,"readyReplicas":3}}""", Readiness.InProgress, "waiting 2/3 updated")]
    [InlineData("""{"kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}},"status":{"observedGeneration":2,"updatedReplicas":1,"readyReplicas":3,"currentRevision":"a","updateRevision":"b"}}""", Readiness.Current, "3/3 ready")]
    [InlineData("""{"kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":3,"readyReplicas":3,"currentRevision":"a","updateRevision":"b"}}""", Readiness.InProgress, "waiting for the update revision to become current")]
    [InlineData("""{"kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":3,"readyReplicas":3,"currentRevision":"b","updateRevision":"b"}}""", Readiness.Current, "3/3 ready")]
    [InlineData("""{"kind":"DaemonSet","metadata":{"generation":1},"status":{"observedGeneration":1,"desiredNumberScheduled":4,"updatedNumberScheduled":4,"numberAvailable":3}}""", Readiness.InProgress, "waiting 3/4 available")]
    [InlineData("""{"kind":"DaemonSet","metadata":{"generation":1},"status":{"observedGeneration":1,"desiredNumberScheduled":4,"updatedNumberScheduled":4,"numberAvailable":4}}""", Readiness.Current, "4/4 available")]
    [InlineData("""{"kind":"Job","metadata":{"generation":1},"status":{"active":1}}""", Readiness.InProgress, "waiting for completion (0 succeeded, 1 active)")]
    [InlineData("""{"kind":"Job","metadata":{"generation":1},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}""", Readiness.Failed, "failed: BackoffLimitExceeded: Job has reached the specified backoff limit")]
    [InlineData("""{"kind":"Job","metadata":{"generation":1},"status":{"succeeded":1,"conditions":[{"type":"Complete","status":"True"}]}}""", Readiness.Current, "complete")]
    [InlineData("""{"kind":"Pod","status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}]}}""", Readiness.InProgress, "waiting for the pod to be ready (Running)")]
    [InlineData("""{"kind":"Widget","metadata":{"generation":3},"status":{"observedGeneration":3,"conditions":[{"type":"Stalled","status":"True","message":"quota exceeded"}]}}""", Readiness.Failed, "stalled: quota exceeded")]
    [InlineData("""{"kind":"Widget","metadata":{"generation":3},"status":{"observedGeneration":3,"conditions":[{"type":"Ready","status":"False","reason":"Provisioning"}]}}""", Readiness.InProgress, "waiting for Ready (Provisioning)")]
    public void Each_kind_is_judged_by_its_own_status(string json, Readiness state, string message)
    {
        Assert.Equal((state, message), ObjectReadiness.Judge(JsonNode.Parse(json)!.AsObject()));
    }

    [Theory]
    [InlineData("StatefulSet", true)]
    [InlineData("DaemonSet", true)]
    [InlineData("Job", true)]
    [InlineData("Widget", true)]
    [InlineData("ConfigMap", false)]
    [InlineData("Service", false)]
    [InlineData("CronJob", false)]
    [InlineData("Deployment", false)]
    public void Only_kinds_with_a_status_to_reach_are_waited_for_here(string kind, bool waits) => Assert.Equal(waits, ObjectReadiness.Waits(kind));
}
