using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Api;

/// <summary>
/// Server-side printing (<c>Accept: application/json;as=Table;g=meta.k8s.io;v=v1</c>), which <c>kubectl get</c>
/// asks for: the columns kube-apiserver's printers give each kind, with its cell formats (<c>1/1</c>,
/// <c>Running</c>, ages like <c>5m12s</c>).
/// </summary>
internal static class TablePrinter
{
    private sealed record Column(string Name, string Type, Func<JsonObject, DateTimeOffset, object?> Cell, int Priority = 0, string Format = "");

    private static readonly Column NameColumn = new("Name", "string", (o, _) => Str(o["metadata"]?["name"]), Format: "name");
    private static readonly Column AgeColumn = new("Age", "string", (o, now) => Age(o["metadata"]?["creationTimestamp"], now));
    private static readonly Column CreatedAtColumn = new("Created At", "date", (o, _) => Str(o["metadata"]?["creationTimestamp"]));

    private static readonly Dictionary<string, Column[]> Columns = new(StringComparer.Ordinal)
    {
        ["Pod"] =
        [
            NameColumn,
            new("Ready", "string", (o, _) => $"{ContainerStatuses(o).Count(c => c["ready"]?.GetValue<bool>() == true)}/{Array(o["spec"]?["containers"]).Count}"),
            new("Status", "string", (o, _) => PodStatus(o)),
            new("Restarts", "string", (o, now) => Restarts(o, now)),
            AgeColumn,
            new("IP", "string", (o, _) => Str(o["status"]?["podIP"]) ?? "<none>", 1),
            new("Node", "string", (o, _) => Str(o["spec"]?["nodeName"]) ?? "<none>", 1),
            new("Nominated Node", "string", (o, _) => Str(o["status"]?["nominatedNodeName"]) ?? "<none>", 1),
            new("Readiness Gates", "string", (o, _) => "<none>", 1),
        ],
        ["Deployment"] =
        [
            NameColumn,
            new("Ready", "string", (o, _) => $"{Int(o["status"]?["readyReplicas"])}/{Int(o["spec"]?["replicas"])}"),
            new("Up-to-date", "integer", (o, _) => Int(o["status"]?["updatedReplicas"])),
            new("Available", "integer", (o, _) => Int(o["status"]?["availableReplicas"])),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["template"]),
        ],
        ["ReplicaSet"] =
        [
            NameColumn,
            new("Desired", "integer", (o, _) => Int(o["spec"]?["replicas"])),
            new("Current", "integer", (o, _) => Int(o["status"]?["replicas"])),
            new("Ready", "integer", (o, _) => Int(o["status"]?["readyReplicas"])),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["template"]),
        ],
        ["DaemonSet"] =
        [
            NameColumn,
            new("Desired", "integer", (o, _) => Int(o["status"]?["desiredNumberScheduled"])),
            new("Current", "integer", (o, _) => Int(o["status"]?["currentNumberScheduled"])),
            new("Ready", "integer", (o, _) => Int(o["status"]?["numberReady"])),
            new("Up-to-date", "integer", (o, _) => Int(o["status"]?["updatedNumberScheduled"])),
            new("Available", "integer", (o, _) => Int(o["status"]?["numberAvailable"])),
            new("Node Selector", "string", (o, _) => Pairs(o["spec"]?["template"]?["spec"]?["nodeSelector"]) ?? "<none>"),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["template"]),
        ],
        ["StatefulSet"] =
        [
            NameColumn,
            new("Ready", "string", (o, _) => $"{Int(o["status"]?["readyReplicas"])}/{Int(o["spec"]?["replicas"])}"),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["template"]),
        ],
        ["Endpoints"] =
        [
            NameColumn,
            new("Endpoints", "string", (o, _) => Endpoints(o)),
            AgeColumn,
        ],
        ["EndpointSlice"] =
        [
            NameColumn,
            new("AddressType", "string", (o, _) => Str(o["addressType"])),
            new("Ports", "string", (o, _) => Array(o["ports"]) is { Count: > 0 } ports ? string.Join(",", ports.Select(p => Int(p?["port"]).ToString(CultureInfo.InvariantCulture))) : "<unset>"),
            new("Endpoints", "string", (o, _) => Array(o["endpoints"]).SelectMany(e => Array(e?["addresses"])).Select(Str).ToList() is { Count: > 0 } ips ? Shortened(ips!) : "<unset>"),
            AgeColumn,
        ],
        ["Lease"] = [NameColumn, new("Holder", "string", (o, _) => Str(o["spec"]?["holderIdentity"]) ?? string.Empty), AgeColumn],
        ["Job"] =
        [
            NameColumn,
            new("Status", "string", (o, _) => JobStatus(o)),
            new("Completions", "string", (o, _) => o["spec"]?["completions"] is { } c ? $"{Int(o["status"]?["succeeded"])}/{Int(c)}" : $"{Int(o["status"]?["succeeded"])}/1 of {Int(o["spec"]?["parallelism"])}"),
            new("Duration", "string", (o, now) => JobDuration(o, now)),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["template"]),
        ],
        ["CronJob"] =
        [
            NameColumn,
            new("Schedule", "string", (o, _) => Str(o["spec"]?["schedule"])),
            new("Timezone", "string", (o, _) => Str(o["spec"]?["timeZone"]) ?? "<none>"),
            new("Suspend", "boolean", (o, _) => o["spec"]?["suspend"]?.GetValue<bool>() == true ? "True" : "False"),
            new("Active", "integer", (o, _) => Array(o["status"]?["active"]).Count),
            new("Last Schedule", "string", (o, now) => o["status"]?["lastScheduleTime"] is { } last ? Age(last, now) : "<none>"),
            AgeColumn,
            .. TemplateColumns(o => o["spec"]?["jobTemplate"]?["spec"]?["template"]),
        ],
        ["Service"] =
        [
            NameColumn,
            new("Type", "string", (o, _) => Str(o["spec"]?["type"]) ?? "ClusterIP"),
            new("Cluster-IP", "string", (o, _) => Str(o["spec"]?["clusterIP"]) ?? "<none>"),
            new("External-IP", "string", (o, _) => Array(o["spec"]?["externalIPs"]) is { Count: > 0 } ips ? string.Join(",", ips.Select(Str)) : "<none>"),
            new("Port(s)", "string", (o, _) => ServicePorts(o)),
            AgeColumn,
            new("Selector", "string", (o, _) => Pairs(o["spec"]?["selector"]) ?? "<none>", 1),
        ],
        ["ConfigMap"] = [NameColumn, new("Data", "integer", (o, _) => Count(o["data"]) + Count(o["binaryData"])), AgeColumn],
        ["Secret"] = [NameColumn, new("Type", "string", (o, _) => Str(o["type"]) ?? "Opaque"), new("Data", "integer", (o, _) => Count(o["data"])), AgeColumn],
        ["Namespace"] = [NameColumn, new("Status", "string", (o, _) => Str(o["status"]?["phase"]) ?? "Active"), AgeColumn],
        ["Node"] =
        [
            NameColumn,
            new("Status", "string", (o, _) => (Array(o["status"]?["conditions"]).Any(c => Str(c?["type"]) == "Ready" && Str(c?["status"]) == "True") ? "Ready" : "NotReady") + (o["spec"]?["unschedulable"]?.GetValue<bool>() == true ? ",SchedulingDisabled" : string.Empty)),
            new("Roles", "string", (o, _) => "<none>"),
            AgeColumn,
            new("Version", "string", (o, _) => Str(o["status"]?["nodeInfo"]?["kubeletVersion"]) ?? string.Empty),
            new("Internal-IP", "string", (o, _) => Str(Array(o["status"]?["addresses"]).FirstOrDefault(a => Str(a?["type"]) == "InternalIP")?["address"]) ?? "<none>", 1),
        ],
        ["Event"] =
        [
            new("Last Seen", "string", (o, now) => Age(o["lastTimestamp"] ?? o["eventTime"] ?? o["metadata"]?["creationTimestamp"], now)),
            new("Type", "string", (o, _) => Str(o["type"])),
            new("Reason", "string", (o, _) => Str(o["reason"])),
            new("Object", "string", (o, _) => $"{Str(o["involvedObject"]?["kind"])?.ToLowerInvariant()}/{Str(o["involvedObject"]?["name"])}"),
            new("Subobject", "string", (o, _) => Str(o["involvedObject"]?["fieldPath"]) ?? string.Empty, 1),
            new("Source", "string", (o, _) => string.Join(", ", new[] { Str(o["source"]?["component"]), Str(o["source"]?["host"]) }.Where(s => !string.IsNullOrEmpty(s))), 1),
            new("Message", "string", (o, _) => Str(o["message"])),
            new("First Seen", "string", (o, now) => Age(o["firstTimestamp"] ?? o["metadata"]?["creationTimestamp"], now), 1),
            new("Count", "string", (o, _) => Int(o["count"]).ToString(CultureInfo.InvariantCulture), 1),
            new("Name", "string", (o, _) => Str(o["metadata"]?["name"]), 1, "name"),
        ],
        ["HorizontalPodAutoscaler"] =
        [
            NameColumn,
            new("Reference", "string", (o, _) => $"{Str(o["spec"]?["scaleTargetRef"]?["kind"])}/{Str(o["spec"]?["scaleTargetRef"]?["name"])}"),
            new("Targets", "string", (o, _) => HpaTargets(o)),
            new("MinPods", "string", (o, _) => Int(o["spec"]?["minReplicas"] ?? JsonValue.Create(1)).ToString(CultureInfo.InvariantCulture)),
            new("MaxPods", "integer", (o, _) => Int(o["spec"]?["maxReplicas"])),
            new("Replicas", "integer", (o, _) => Int(o["status"]?["currentReplicas"])),
            AgeColumn,
        ],
        ["ServiceAccount"] = [NameColumn, new("Secrets", "integer", (o, _) => Array(o["secrets"]).Count), AgeColumn],
        ["NetworkPolicy"] = [NameColumn, new("Pod-Selector", "string", (o, _) => Pairs(o["spec"]?["podSelector"]?["matchLabels"]) ?? "<none>"), AgeColumn],
        ["Ingress"] =
        [
            NameColumn,
            new("Class", "string", (o, _) => Str(o["spec"]?["ingressClassName"]) ?? "<none>"),
            new("Hosts", "string", (o, _) => string.Join(",", Array(o["spec"]?["rules"]).Select(r => Str(r?["host"]) ?? "*")) is { Length: > 0 } hosts ? hosts : "*"),
            new("Address", "string", (o, _) => string.Join(",", Array(o["status"]?["loadBalancer"]?["ingress"]).Select(i => Str(i?["ip"]) ?? Str(i?["hostname"])))),
            new("Ports", "string", (o, _) => Array(o["spec"]?["tls"]).Count > 0 ? "80, 443" : "80"),
            AgeColumn,
        ],
        ["LimitRange"] = [NameColumn, CreatedAtColumn],
        ["Role"] = [NameColumn, CreatedAtColumn],
        ["ClusterRole"] = [NameColumn, CreatedAtColumn],
        ["RoleBinding"] = BindingColumns(),
        ["ClusterRoleBinding"] = BindingColumns(),
    };

    /// <summary>True when the Accept header asks for a Table (kubectl get does).</summary>
    public static bool Wanted(string? accept) => accept?.Contains("as=Table", StringComparison.Ordinal) == true;

    /// <summary>A custom resource's columns: its name, then its definition's printer columns (or its age when it has none).</summary>
    private static Column[] CustomColumns(Store.CustomResource custom) => custom.Columns.Count == 0
        ? [NameColumn, AgeColumn]
        : [NameColumn, .. custom.Columns.Select(c => new Column(c.Name, c.Type, (o, now) => Store.CustomResource.At(o, c.JsonPath) switch
        {
            // As kube-apiserver's table convertor: a date reads as an age.
            { } date when c.Type == "date" => Age(date, now),
            JsonValue value when value.TryGetValue<string>(out var text) => text,
            JsonValue value when value.TryGetValue<bool>(out var flag) => flag,
            JsonValue value => value.ToJsonString(),
            { } node => node.ToJsonString(),
            null => null,
        }, c.Priority))];

    /// <summary>A Table of the objects, with each row's object as <paramref name="includeObject"/> says (None, Metadata, Object).</summary>
    public static JsonObject Table(ResourceType type, IEnumerable<JsonObject> items, long? resourceVersion, string? includeObject, DateTimeOffset now)
    {
        if (includeObject is not (null or "None" or "Metadata" or "Object"))
        {
            throw ApiError.BadRequest($"includeObject must be None, Metadata or Object, not {includeObject}");
        }

        var columns = type.Custom is { } custom ? CustomColumns(custom) : Columns.GetValueOrDefault(type.Kind) ?? [NameColumn, CreatedAtColumn];
        var rows = new JsonArray();
        foreach (var item in items)
        {
            var row = new JsonObject { ["cells"] = new JsonArray([.. columns.Select(c => Cell(c.Cell(item, now)))]) };
            row["object"] = includeObject switch
            {
                "None" => null,
                "Object" => item.DeepClone(),
                _ => new JsonObject { ["kind"] = "PartialObjectMetadata", ["apiVersion"] = "meta.k8s.io/v1", ["metadata"] = item["metadata"]?.DeepClone() },
            };
            rows.Add(row);
        }

        var metadata = new JsonObject();
        if (resourceVersion is { } rv)
        {
            metadata["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
        }

        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = metadata,
            ["columnDefinitions"] = new JsonArray([.. columns.Select(c => (JsonNode)new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type,
                ["format"] = c.Format,
                ["description"] = c.Name,
                ["priority"] = c.Priority,
            })]),
            ["rows"] = rows,
        };
    }

    private static JsonNode? Cell(object? value) => value switch
    {
        null => null,
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        string s => JsonValue.Create(s),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };

    private static Column[] BindingColumns() =>
    [
        NameColumn,
        new("Role", "string", (o, _) => $"{Str(o["roleRef"]?["kind"])}/{Str(o["roleRef"]?["name"])}"),
        AgeColumn,
        new("Users", "string", (o, _) => Subjects(o, "User"), 1),
        new("Groups", "string", (o, _) => Subjects(o, "Group"), 1),
        new("ServiceAccounts", "string", (o, _) => Subjects(o, "ServiceAccount"), 1),
    ];

    private static string Subjects(JsonObject binding, string kind) => string.Join(", ", Array(binding["subjects"]).OfType<JsonObject>()
        .Where(s => Str(s["kind"]) == kind)
        .Select(s => kind == "ServiceAccount" ? $"{Str(s["namespace"])}/{Str(s["name"])}" : Str(s["name"])));

    private static Column[] TemplateColumns(Func<JsonObject, JsonNode?> template) =>
    [
        new("Containers", "string", (o, _) => string.Join(",", Array(template(o)?["spec"]?["containers"]).Select(c => Str(c?["name"]))), 1),
        new("Images", "string", (o, _) => string.Join(",", Array(template(o)?["spec"]?["containers"]).Select(c => Str(c?["image"]))), 1),
        new("Selector", "string", (o, _) => Pairs(o["spec"]?["selector"]?["matchLabels"] ?? o["spec"]?["selector"]) ?? "<none>", 1),
    ];

    private static string PodStatus(JsonObject pod)
    {
        // As kubectl's printPod: the phase, or the pod's reason, or the last container's waiting or terminated reason.
        var reason = Str(pod["status"]?["reason"]) ?? Str(pod["status"]?["phase"]) ?? "Pending";
        var initStatuses = Array(pod["status"]?["initContainerStatuses"]).OfType<JsonObject>().ToList();
        for (var i = 0; i < initStatuses.Count; i++)
        {
            var state = initStatuses[i]["state"];
            if (state?["terminated"]?["exitCode"] is { } code && Int(code) == 0)
            {
                continue;
            }

            reason = state?["terminated"] is { } terminated ? "Init:" + (Str(terminated["reason"]) ?? $"ExitCode:{Int(terminated["exitCode"])}")
                : state?["waiting"]?["reason"] is { } waiting && Str(waiting) != "PodInitializing" ? "Init:" + Str(waiting)
                : $"Init:{i}/{initStatuses.Count}";
            return Terminating(pod, reason);
        }

        var running = false;
        foreach (var status in ContainerStatuses(pod).Reverse())
        {
            var state = status["state"];
            if (Str(state?["waiting"]?["reason"]) is { Length: > 0 } waiting)
            {
                reason = waiting;
            }
            else if (state?["terminated"] is { } terminated)
            {
                reason = Str(terminated["reason"]) ?? (Int(terminated["signal"]) != 0 ? $"Signal:{Int(terminated["signal"])}" : $"ExitCode:{Int(terminated["exitCode"])}");
            }
            else if (state?["running"] is not null && status["ready"]?.GetValue<bool>() == true)
            {
                running = true;
            }
        }

        if (reason == "Completed" && running)
        {
            reason = "Running";
        }

        return Terminating(pod, reason);
    }

    private static string Terminating(JsonObject pod, string reason) =>
        pod["metadata"]?["deletionTimestamp"] is not null ? (reason == "NodeLost" ? "Unknown" : "Terminating") : reason;

    private static string Restarts(JsonObject pod, DateTimeOffset now)
    {
        var count = 0L;
        DateTimeOffset? last = null;
        foreach (var status in ContainerStatuses(pod))
        {
            count += Int(status["restartCount"]);
            if (Str(status["lastState"]?["terminated"]?["finishedAt"]) is { } finished &&
                DateTimeOffset.TryParse(finished, CultureInfo.InvariantCulture, out var at) && (last is null || at > last))
            {
                last = at;
            }
        }

        return last is { } when && count > 0 ? $"{count} ({HumanDuration(now - when)} ago)" : count.ToString(CultureInfo.InvariantCulture);
    }

    private static string JobStatus(JsonObject job)
    {
        var conditions = Array(job["status"]?["conditions"]).OfType<JsonObject>().Where(c => Str(c["status"]) == "True").Select(c => Str(c["type"])).ToList();
        return conditions.Contains("Complete") ? "Complete"
            : conditions.Contains("Failed") ? "Failed"
            : conditions.Contains("FailureTarget") ? "FailureTarget"
            : conditions.Contains("SuccessCriteriaMet") ? "SuccessCriteriaMet"
            : conditions.Contains("Suspended") ? "Suspended"
            : job["metadata"]?["deletionTimestamp"] is not null ? "Terminating"
            : "Running";
    }

    private static string JobDuration(JsonObject job, DateTimeOffset now)
    {
        if (!TryTime(job["status"]?["startTime"], out var start))
        {
            return string.Empty;
        }

        return HumanDuration((TryTime(job["status"]?["completionTime"], out var end) ? end : now) - start);
    }

    private static string ServicePorts(JsonObject service)
    {
        var ports = Array(service["spec"]?["ports"]).OfType<JsonObject>().Select(p =>
            p["nodePort"] is { } node ? $"{Int(p["port"])}:{Int(node)}/{Str(p["protocol"]) ?? "TCP"}" : $"{Int(p["port"])}/{Str(p["protocol"]) ?? "TCP"}").ToList();
        return ports.Count == 0 ? "<none>" : string.Join(",", ports);
    }

    private static string HpaTargets(JsonObject hpa)
    {
        var targets = Array(hpa["spec"]?["metrics"]).OfType<JsonObject>().Select(m =>
            m["resource"] is { } r ? $"{Str(r["name"])}: <unknown>/{(r["target"]?["averageUtilization"] is { } u ? $"{Int(u)}%" : Str(r["target"]?["averageValue"]) ?? "<unset>")}" : "<unknown>").ToList();
        return targets.Count == 0 ? "<none>" : string.Join(", ", targets);
    }

    /// <summary>How long ago, as kube-apiserver's <c>duration.HumanDuration</c> writes it.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < -1)
        {
            return "<invalid>";
        }

        if (seconds < 0)
        {
            return "0s";
        }

        if (seconds < 120)
        {
            return $"{seconds}s";
        }

        var minutes = seconds / 60;
        if (minutes < 10)
        {
            return seconds % 60 == 0 ? $"{minutes}m" : $"{minutes}m{seconds % 60}s";
        }

        if (minutes < 180)
        {
            return $"{minutes}m";
        }

        var hours = minutes / 60;
        if (hours < 8)
        {
            return minutes % 60 == 0 ? $"{hours}h" : $"{hours}h{minutes % 60}m";
        }

        if (hours < 48)
        {
            return $"{hours}h";
        }

        if (hours < 24 * 8)
        {
            return hours % 24 == 0 ? $"{hours / 24}d" : $"{hours / 24}d{hours % 24}h";
        }

        if (hours < 24 * 365 * 2)
        {
            return $"{hours / 24}d";
        }

        if (hours < 24 * 365 * 8)
        {
            var days = hours / 24 % 365;
            return days == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{days}d";
        }

        return $"{hours / 24 / 365}y";
    }

    private static string Age(JsonNode? timestamp, DateTimeOffset now) => TryTime(timestamp, out var at) ? HumanDuration(now - at) : "<unknown>";

    private static bool TryTime(JsonNode? node, out DateTimeOffset at) =>
        DateTimeOffset.TryParse(Str(node), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at);

    private static IEnumerable<JsonObject> ContainerStatuses(JsonObject pod) => Array(pod["status"]?["containerStatuses"]).OfType<JsonObject>();

    private static JsonArray Array(JsonNode? node) => node as JsonArray ?? [];

    private static int Count(JsonNode? node) => (node as JsonObject)?.Count ?? 0;

    private static long Int(JsonNode? node) => JsonNumber.Long(node) ?? 0;

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string? Pairs(JsonNode? node) =>
        node is JsonObject { Count: > 0 } map ? string.Join(",", map.Select(p => $"{p.Key}={Str(p.Value)}")) : null;

    /// <summary>An Endpoints' addresses as kubectl shows them: IP:PORT of each ready address, the first three, then "+ N more...".</summary>
    private static string Endpoints(JsonObject o)
    {
        var all = Array(o["subsets"]).SelectMany(s => Array(s?["addresses"]).SelectMany(a => Array(s?["ports"]).Select(p => $"{Str(a?["ip"])}:{Int(p?["port"])}"))).ToList();
        return all.Count == 0 ? "<none>" : Shortened(all);
    }

    private static string Shortened(List<string> items) =>
        items.Count <= 3 ? string.Join(",", items) : $"{string.Join(",", items.Take(3))} + {items.Count - 3} more...";
}
