using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// The endpoints and endpointslice controllers of kube-controller-manager: for each Service with a selector, an
/// Endpoints of the same name (ready pods' addresses, the others as not ready, its ports with named target ports
/// resolved in each pod) and EndpointSlices of up to 100 endpoints each, labelled with the service's name and owned
/// by it. They are written only when what they say changes, and looked at again only in the namespaces where a pod
/// or a service changed. The Endpoints of a deleted Service are deleted; its slices go with it (owner reference).
/// </summary>
internal sealed class EndpointsController(ObjectStore store)
{
    /// <summary>The label naming an EndpointSlice's Service.</summary>
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    private const string ManagedBy = "endpointslice.kubernetes.io/managed-by";
    private const string SliceManager = "endpointslice-controller.k8s.io";
    private const int MaxEndpointsPerSlice = 100;

    private static readonly ResourceType Services = ResourceTypes.ByKind("Service")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;
    private static readonly ResourceType Endpoints = ResourceTypes.ByKind("Endpoints")!;
    private static readonly ResourceType Slices = ResourceTypes.ByKind("EndpointSlice")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        var namespaces = complete
            ? changes.Where(e => e.Resource == Pods || e.Resource == Services || (e.Type == "DELETED" && (e.Resource == Endpoints || e.Resource == Slices)))
                .Select(e => Json.Namespace(e.Object)!)
            : store.ListShared(Services, null).Items.Select(s => Json.Namespace(s)!);
        foreach (var gone in changes.Where(e => e.Type == "DELETED" && e.Resource == Services))
        {
            Try(() => store.Delete(Endpoints, Json.Namespace(gone.Object), Json.Name(gone.Object)));
        }

        foreach (var ns in namespaces.Distinct(StringComparer.Ordinal).ToList())
        {
            Sync(ns);
        }
    }

    private void Sync(string ns)
    {
        var pods = store.ListShared(Pods, ns).Items;
        foreach (var service in store.ListShared(Services, ns).Items.Where(s => !Json.Deleting(s)))
        {
            if (service["spec"]?["selector"] is not JsonObject { Count: > 0 } selector || Json.Str(service["spec"]?["type"]) == "ExternalName")
            {
                continue;
            }

            var query = LabelQuery.FromSelector(new JsonObject { ["matchLabels"] = selector.DeepClone() });
            var publishNotReady = service["spec"]?["publishNotReadyAddresses"]?.GetValueKind() == System.Text.Json.JsonValueKind.True;
            var members = pods
                .Where(p => query.Matches(p) && Json.Str(p["status"]?["podIP"]) is not null && (!Json.Deleting(p) || publishNotReady))
                .Select(p => new Member(p, Ready(p) || publishNotReady, Ports(service, p)))
                .OrderBy(m => Json.Name(m.Pod), StringComparer.Ordinal)
                .ToList();
            Try(() => WriteEndpoints(service, members));
            Try(() => WriteSlices(service, members));
        }
    }

    private sealed record Member(JsonObject Pod, bool Ready, JsonArray Ports)
    {
        public string Ip => Json.Str(Pod["status"]?["podIP"])!;
    }

    private static bool Ready(JsonObject pod) => !Json.Deleting(pod) && Json.PodReady(pod);

    /// <summary>The service's ports as this pod serves them: a named target port is the pod's container port of that name.</summary>
    private static JsonArray Ports(JsonObject service, JsonObject pod)
    {
        var ports = new JsonArray();
        foreach (var port in (service["spec"]?["ports"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var target = port["targetPort"] ?? port["port"];
            int? number = Json.Str(target) is { } name
                ? (pod["spec"]?["containers"] as JsonArray ?? []).SelectMany(c => c?["ports"] as JsonArray ?? [])
                    .FirstOrDefault(p => Json.Str(p?["name"]) == name) is { } found ? Json.Int(found["containerPort"]) : null
                : Json.Int(target);
            if (number is { } resolved)
            {
                var entry = new JsonObject();
                if (Json.Str(port["name"]) is { Length: > 0 } portName)
                {
                    entry["name"] = portName;
                }

                entry["port"] = resolved;
                entry["protocol"] = Json.Str(port["protocol"]) ?? "TCP";
                ports.Add(entry);
            }
        }

        return ports;
    }

    private static JsonObject WithNode(JsonObject endpoint, JsonObject pod)
    {
        if (Json.Str(pod["spec"]?["nodeName"]) is { } node)
        {
            endpoint["nodeName"] = node;
        }

        return endpoint;
    }

    private static JsonObject PodReference(JsonObject pod) => new()
    {
        ["kind"] = "Pod",
        ["namespace"] = Json.Namespace(pod),
        ["name"] = Json.Name(pod),
        ["uid"] = Json.Str(pod["metadata"]?["uid"]),
    };

    private void WriteEndpoints(JsonObject service, List<Member> members)
    {
        var subsets = new JsonArray();
        foreach (var group in members.GroupBy(m => m.Ports.ToJsonString()))
        {
            JsonArray Addresses(bool ready) => [.. group.Where(m => m.Ready == ready).OrderBy(m => m.Ip, StringComparer.Ordinal).Select(m => (JsonNode)WithNode(new JsonObject
            {
                ["ip"] = m.Ip,
                ["targetRef"] = PodReference(m.Pod),
            }, m.Pod))];
            var subset = new JsonObject();
            if (Addresses(true) is { Count: > 0 } ready)
            {
                subset["addresses"] = ready;
            }

            if (Addresses(false) is { Count: > 0 } notReady)
            {
                subset["notReadyAddresses"] = notReady;
            }

            subset["ports"] = group.First().Ports.DeepClone();
            subsets.Add(subset);
        }

        var (ns, name) = (Json.Namespace(service), Json.Name(service));
        var desired = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Endpoints",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["labels"] = service["metadata"]?["labels"]?.DeepClone() ?? new JsonObject() },
        };
        if (subsets.Count > 0)
        {
            desired["subsets"] = subsets;
        }

        var live = store.GetShared(Endpoints, ns, name);
        if (live is null)
        {
            store.Create(Endpoints, ns, desired, "endpoint-controller");
        }
        else if (!JsonNode.DeepEquals(live["subsets"], desired["subsets"]) || !JsonNode.DeepEquals(live["metadata"]?["labels"] ?? new JsonObject(), desired["metadata"]!["labels"]))
        {
            desired["metadata"]!["resourceVersion"] = live["metadata"]?["resourceVersion"]?.DeepClone();
            store.Update(Endpoints, ns, name, desired, statusOnly: false, "endpoint-controller");
        }
    }

    private void WriteSlices(JsonObject service, List<Member> members)
    {
        var (ns, name) = (Json.Namespace(service), Json.Name(service));
        var uid = Json.Uid(service);
        var wanted = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var index = 0;
        foreach (var group in members.GroupBy(m => m.Ports.ToJsonString()))
        {
            foreach (var chunk in group.Chunk(MaxEndpointsPerSlice))
            {
                // A stable name per service and chunk, in the form kube-controller-manager generates (NAME-xxxxx).
                var sliceName = $"{name}-{Hash($"{uid}/{index++}")}";
                var labels = service["metadata"]?["labels"]?.DeepClone() as JsonObject ?? new JsonObject();
                labels[ServiceNameLabel] = name;
                labels[ManagedBy] = SliceManager;
                wanted[sliceName] = new JsonObject
                {
                    ["apiVersion"] = "discovery.k8s.io/v1",
                    ["kind"] = "EndpointSlice",
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = sliceName,
                        ["namespace"] = ns,
                        ["labels"] = labels,
                        ["ownerReferences"] = new JsonArray(Json.OwnerReference(service)),
                    },
                    ["addressType"] = "IPv4",
                    ["endpoints"] = new JsonArray([.. chunk.Select(m => (JsonNode)WithNode(new JsonObject
                    {
                        ["addresses"] = new JsonArray(m.Ip),
                        ["conditions"] = new JsonObject { ["ready"] = m.Ready, ["serving"] = m.Ready, ["terminating"] = Json.Deleting(m.Pod) },
                        ["targetRef"] = PodReference(m.Pod),
                    }, m.Pod))]),
                    ["ports"] = group.First().Ports.DeepClone(),
                };
            }
        }

        var existing = store.ListShared(Slices, ns, LabelQuery.Parse($"{ServiceNameLabel}={name},{ManagedBy}={SliceManager}")).Items;
        foreach (var stale in existing.Where(s => !wanted.ContainsKey(Json.Name(s))))
        {
            Try(() => store.Delete(Slices, ns, Json.Name(stale)));
        }

        foreach (var (sliceName, desired) in wanted)
        {
            var live = existing.FirstOrDefault(s => Json.Name(s) == sliceName);
            if (live is null)
            {
                store.Create(Slices, ns, desired, SliceManager);
            }
            else if (!JsonNode.DeepEquals(live["endpoints"], desired["endpoints"]) || !JsonNode.DeepEquals(live["ports"], desired["ports"]) || !JsonNode.DeepEquals(live["metadata"]?["labels"], desired["metadata"]!["labels"]))
            {
                desired["metadata"]!["resourceVersion"] = live["metadata"]?["resourceVersion"]?.DeepClone();
                store.Update(Slices, ns, sliceName, desired, statusOnly: false, SliceManager);
            }
        }
    }

    private static string Hash(string text)
    {
        const string Alphabet = "bcdfghjklmnpqrstvwxz2456789";
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return new string([.. bytes.Take(5).Select(b => Alphabet[b % Alphabet.Length])]);
    }

    private static void Try(Action write)
    {
        try
        {
            write();
        }
        catch (ApiError raced) when (raced.Code is 404 or 409 or 403)
        {
            // Changed or gone meanwhile, or the namespace is terminating: the next pass sees the new state.
        }
    }
}
