using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// The cluster IPs and node ports of Services, as kube-apiserver allocates them: unique in the cluster, node ports in
/// 30000–32767. A Service that asks for one already taken is refused in kube-apiserver's words ("provided port is
/// already allocated"); one that asks for none gets the lowest free. Allocation is read from the stored Services, so
/// it is per cluster and survives a restart.
/// </summary>
internal static class ServiceAddresses
{
    /// <summary>The node-port range (kube-apiserver's default <c>--service-node-port-range</c>).</summary>
    public const int FirstNodePort = 30000;

    /// <summary>The last port of the node-port range.</summary>
    public const int LastNodePort = 32767;

    /// <summary>Checks and fills <paramref name="service"/>'s cluster IP and node ports against every other Service of the cluster.</summary>
    public static void Allocate(ResourceType type, JsonObject service, IEnumerable<JsonObject> others)
    {
        if (service["spec"] is not JsonObject spec)
        {
            return;
        }

        var name = service["metadata"]?["name"]?.GetValue<string>() ?? string.Empty;
        var usedIps = new HashSet<string>(StringComparer.Ordinal);
        var usedPorts = new HashSet<int>();
        foreach (var other in others)
        {
            if (other["spec"]?["clusterIP"]?.GetValue<string>() is { } ip && ip != "None")
            {
                usedIps.Add(ip);
            }

            foreach (var port in other["spec"]?["ports"] as JsonArray ?? [])
            {
                if (port?["nodePort"] is JsonValue node && node.TryGetValue<int>(out var n))
                {
                    usedPorts.Add(n);
                }
            }
        }

        var serviceType = spec["type"]?.GetValue<string>() ?? "ClusterIP";
        var causes = new List<(string Field, string Message)>();
        var ports = spec["ports"] as JsonArray ?? [];
        for (var i = 0; i < ports.Count; i++)
        {
            if (ports[i] is not JsonObject port)
            {
                continue;
            }

            var field = $"spec.ports[{i}].nodePort";
            if (port["nodePort"] is JsonValue given && given.TryGetValue<int>(out var wanted))
            {
                if (serviceType is not ("NodePort" or "LoadBalancer"))
                {
                    causes.Add((field, $"Forbidden: may not be used when `type` is '{serviceType}'"));
                }
                else if (wanted < FirstNodePort || wanted > LastNodePort)
                {
                    causes.Add((field, $"Invalid value: {wanted.ToString(CultureInfo.InvariantCulture)}: provided port is not in the valid range. The range of valid ports is {FirstNodePort}-{LastNodePort}"));
                }
                else if (!usedPorts.Add(wanted))
                {
                    causes.Add((field, $"Invalid value: {wanted.ToString(CultureInfo.InvariantCulture)}: provided port is already allocated"));
                }
            }
            else if (serviceType is "NodePort" or "LoadBalancer")
            {
                var free = Enumerable.Range(FirstNodePort, LastNodePort - FirstNodePort + 1).FirstOrDefault(p => !usedPorts.Contains(p));
                if (free == 0)
                {
                    causes.Add((field, "Internal error: range is full"));
                    continue;
                }

                usedPorts.Add(free);
                port["nodePort"] = free;
            }
        }

        var clusterIp = spec["clusterIP"]?.GetValue<string>();
        if (clusterIp is null && serviceType != "ExternalName")
        {
            // 10.96.0.1 is the kubernetes Service's on a real cluster; allocation starts after it.
            for (var n = 2; n < 250 * 250; n++)
            {
                var candidate = $"10.96.{n / 250}.{n % 250}";
                if (n % 250 != 0 && !usedIps.Contains(candidate))
                {
                    spec["clusterIP"] = candidate;
                    break;
                }
            }
        }
        else if (clusterIp is not null and not "None" && usedIps.Contains(clusterIp))
        {
            causes.Add(("spec.clusterIPs", $"Invalid value: []string{{\"{clusterIp}\"}}: failed to allocate IP {clusterIp}: provided IP is already allocated"));
        }

        if (causes.Count > 0)
        {
            throw ApiError.Invalid(type, name, [.. causes]);
        }

        // What kube-apiserver sets beside the address: its list form and the single IPv4 family.
        if (serviceType != "ExternalName" && spec["clusterIP"]?.GetValue<string>() is { } allocated)
        {
            spec["clusterIPs"] ??= new JsonArray(allocated);
            spec["ipFamilies"] ??= new JsonArray("IPv4");
            spec["ipFamilyPolicy"] ??= "SingleStack";
            spec["internalTrafficPolicy"] ??= "Cluster";
            if (serviceType is "NodePort" or "LoadBalancer")
            {
                spec["externalTrafficPolicy"] ??= "Cluster";
            }
        }
    }
}
