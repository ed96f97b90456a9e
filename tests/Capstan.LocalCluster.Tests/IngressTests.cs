using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>networking.k8s.io/v1 Ingress: served, and validated in kube-apiserver's words.</summary>
public sealed class IngressTests
{
    private static JsonObject Ingress(string rule) => Cluster.Yaml($"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: url, namespace: app}}\nspec:\n  rules:\n{rule}");

    private const string Good = "    - host: dev1.mw-web.env.example.org\n      http:\n        paths:\n          - {path: /, pathType: Prefix, backend: {service: {name: tls, port: {number: 4450}}}}\n";

    [Fact]
    public async Task An_ingress_is_stored_and_listed_and_a_bad_one_gets_kube_apiservers_causes()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var created = await cluster.Client.ApplyAsync(Ingress(Good), false, false, default);
        Assert.Equal("dev1.mw-web.env.example.org", created["spec"]!["rules"]![0]!["host"]!.GetValue<string>());
        Assert.Single((await cluster.Client.ListAsync("networking.k8s.io/v1", "Ingress", "app", null, default)).Items);

        var noPathType = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.Client.ApplyAsync(
            Ingress("    - host: a.example.org\n      http:\n        paths:\n          - {path: /, backend: {service: {name: tls, port: {number: 4450}}}}\n"), false, false, default));
        Assert.Contains("spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified", noPathType.Message, StringComparison.Ordinal);

        var ipHost = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.Client.ApplyAsync(Ingress(Good.Replace("dev1.mw-web.env.example.org", "10.64.0.80", StringComparison.Ordinal)), false, false, default));
        Assert.Contains("spec.rules[0].host: Invalid value: \"10.64.0.80\": must be a DNS name, not an IP address", ipHost.Message, StringComparison.Ordinal);

        var relative = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.Client.ApplyAsync(Ingress(Good.Replace("path: /,", "path: wiki,", StringComparison.Ordinal)), false, false, default));
        Assert.Contains("spec.rules[0].http.paths[0].path: Invalid value: \"wiki\": must be an absolute path", relative.Message, StringComparison.Ordinal);

        var noPort = await Assert.ThrowsAsync<KubeInvalidException>(() => cluster.Client.ApplyAsync(Ingress(Good.Replace(", port: {number: 4450}", string.Empty, StringComparison.Ordinal)), false, false, default));
        Assert.Contains("backend.service.port: Invalid value: \"\": port name or number is required", noPort.Message, StringComparison.Ordinal);
    }
}
