using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Controllers;

/// <content>The kubelet's service environment: the variables a pod's containers get for the services of its namespace (service links), and the references they leave unresolved.</content>
internal sealed partial class Kubelet
{
    private List<JsonObject> Linked(JsonObject pod)
    {
        if (pod["spec"]?["enableServiceLinks"]?.GetValue<bool>() == false)
        {
            return [];
        }

        var ns = Json.Namespace(pod)!;
        var names = (Json.Str(pod["metadata"]?["annotations"]?[LinksAnnotation]) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries);
        return [.. names.Select(n => store.GetShared(Services, ns, n)).OfType<JsonObject>()];
    }

    /// <summary>The first reference left unresolved after Kubernetes' <c>$(VAR)</c> expansion, if any.</summary>
    private static (string Env, string Var)? Unresolved(JsonObject container, List<JsonObject> services, JsonObject pod, string podIp)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var svc in services)
        {
            var prefix = KubeNames.ServiceEnvPrefix(Json.Name(svc));
            var ip = Json.Str(svc["spec"]?["clusterIP"]) ?? "10.96.0.1";
            var ports = svc["spec"]?["ports"] as JsonArray ?? [];
            vars[prefix + "_SERVICE_HOST"] = ip;
            if (ports.Count > 0)
            {
                vars[prefix + "_SERVICE_PORT"] = Json.Int(ports[0]?["port"]).ToString(CultureInfo.InvariantCulture);
            }

            foreach (var port in ports)
            {
                if (Json.Str(port?["name"]) is { Length: > 0 } portName)
                {
                    vars[prefix + "_SERVICE_PORT_" + KubeNames.ServiceEnvPrefix(portName)] = Json.Int(port?["port"]).ToString(CultureInfo.InvariantCulture);
                }
            }
        }

        foreach (var env in container["env"] as JsonArray ?? [])
        {
            var name = Json.Str(env?["name"]) ?? string.Empty;
            if (env?["value"] is { } value)
            {
                var (expanded, missing) = Expand(value.GetValue<string>(), vars);
                if (missing is not null)
                {
                    return (name, missing);
                }

                vars[name] = expanded;
            }
            else if (env?["valueFrom"]?["fieldRef"]?["fieldPath"] is { } fieldPath)
            {
                vars[name] = fieldPath.GetValue<string>() switch
                {
                    "metadata.name" => Json.Name(pod),
                    "metadata.namespace" => Json.Namespace(pod) ?? string.Empty,
                    "spec.nodeName" => "local-node-1",
                    "status.podIP" => podIp,
                    _ => string.Empty,
                };
            }
            else
            {
                vars[name] = string.Empty;
            }
        }

        return null;
    }

    /// <summary>Expands <c>$(VAR)</c> as Kubernetes does: known variables are replaced, <c>$$</c> escapes, unknown ones stay.</summary>
    internal static (string Value, string? Missing) Expand(string value, IReadOnlyDictionary<string, string> vars) =>
        Core.Kubernetes.ContainerExpansion.Expand(value, vars);
}
