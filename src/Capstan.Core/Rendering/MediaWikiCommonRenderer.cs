using Capstan.Core.Kubernetes;

namespace Capstan.Core.Rendering;

/// <summary>
/// Renders the mediawiki-common support release: the namespace's shared NetworkPolicies (egress to the
/// infrastructure MediaWiki needs, DNS, and the namespace's statsd-exporter).
/// </summary>
public static class MediaWikiCommonRenderer
{
    /// <summary>Renders the release's objects.</summary>
    public static IReadOnlyList<IKubeObject> Render(ReleaseContext ctx)
    {
        var mediawikiPods = new LabelSelector(SortedMap.Of(("app", "mediawiki")));
        var egress = ctx.Values.Egress
            .Select(e => new NetworkPolicyRule(
                To: [new NetworkPolicyPeer(IpBlock: new IpBlock(e.Cidr))],
                Ports: e.Ports.Count == 0 ? null : [.. e.Ports.Select(p => new NetworkPolicyPort("TCP", p))]))
            .ToList();
        egress.Add(new NetworkPolicyRule(
            To: [new NetworkPolicyPeer(NamespaceSelector: new LabelSelector(SortedMap.Of(("kubernetes.io/metadata.name", "kube-system"))))],
            Ports: [new NetworkPolicyPort("UDP", 53), new NetworkPolicyPort("TCP", 53)]));
        var infra = new NetworkPolicy(
            MediaWikiRenderer.Meta(ctx, $"{ctx.Release.Name}-egress"),
            new NetworkPolicySpec(mediawikiPods, ["Egress"], Egress: egress));
        var statsd = new NetworkPolicy(
            MediaWikiRenderer.Meta(ctx, $"{ctx.Release.Name}-statsd"),
            new NetworkPolicySpec(
                mediawikiPods,
                ["Egress"],
                Egress:
                [
                    new NetworkPolicyRule(
                        To: [new NetworkPolicyPeer(PodSelector: new LabelSelector(SortedMap.Of(("app", "statsd-exporter"))))],
                        Ports: [new NetworkPolicyPort("UDP", ctx.Values.Monitoring.StatsdPort)]),
                ]));
        return [infra, statsd];
    }
}
