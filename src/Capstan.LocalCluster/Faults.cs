using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster;

/// <summary>
/// Faults injected through <c>/capstan/faults</c>: HTTP errors, hangs or connection resets for the next N requests,
/// open watches cut mid-stream, pods of a selector that crash-loop, Job pods that fail, pods that start slowly, and
/// pods (of a selector or running an image) that answer more of their simulated requests with errors, or get less traffic.
/// </summary>
public sealed class FaultInjector
{
    private readonly Lock _lock = new();
    private readonly List<HttpFault> _http = [];
    private readonly List<PodFault> _pods = [];
    private CancellationTokenSource _watchCut = new();

    /// <summary>The status of an HTTP fault that resets the connection instead of answering.</summary>
    public const int ResetStatus = -1;

    /// <summary>Cancelled when the open watches are cut (a new token serves the watches opened after).</summary>
    public CancellationToken WatchCut
    {
        get
        {
            lock (_lock)
            {
                return _watchCut.Token;
            }
        }
    }

    /// <summary>Cuts every open watch mid-stream, as a dropped connection or an API server restart would.</summary>
    public void CutWatches()
    {
        CancellationTokenSource cut;
        lock (_lock)
        {
            cut = _watchCut;
            _watchCut = new CancellationTokenSource();
        }

        cut.Cancel();
    }

    /// <summary>An HTTP fault: answer <see cref="Status"/> (or hang for <see cref="Hang"/>) to the next <see cref="Count"/> requests.</summary>
    public sealed record HttpFault(int Status, int Count, TimeSpan Hang, int? RetryAfterSeconds, string? PathContains)
    {
        /// <summary>How many requests are still to be hit.</summary>
        public int Remaining { get; set; } = Count;
    }

    /// <summary>What happens to pods matching a selector.</summary>
    public enum PodFaultKind
    {
        /// <summary>Containers crash at start and back off.</summary>
        CrashLoop,

        /// <summary>Job pods exit non-zero.</summary>
        FailJob,

        /// <summary>Pods take <see cref="PodFault.Delay"/> longer to become ready.</summary>
        Slow,

        /// <summary>Pods answer <see cref="PodFault.Ratio"/> of their simulated requests with 5xx errors.</summary>
        Errors,

        /// <summary>Pods receive <see cref="PodFault.Ratio"/> simulated requests per second instead of the default.</summary>
        Traffic,
    }

    /// <summary>A pod fault; <see cref="Image"/>, when set, limits it to pods with a container whose image contains it.</summary>
    public sealed record PodFault(PodFaultKind Kind, string? Namespace, LabelQuery Selector, string SelectorText, TimeSpan Delay)
    {
        /// <summary>The error ratio (<see cref="PodFaultKind.Errors"/>) or the requests per second (<see cref="PodFaultKind.Traffic"/>).</summary>
        public double Ratio { get; init; }

        /// <summary>A part of an image reference: only pods running a matching image are hit.</summary>
        public string? Image { get; init; }

        /// <summary>True when the fault applies to the pod.</summary>
        public bool Matches(JsonObject pod)
        {
            if ((Namespace is not null && Namespace != pod.Kube.Namespace) || !Selector.Matches(pod))
            {
                return false;
            }

            return Image is null || (pod["spec"]?["containers"] as JsonArray ?? []).Any(c => c?["image"]?.GetValue<string>()?.Contains(Image, StringComparison.Ordinal) == true);
        }
    }

    /// <summary>Takes the HTTP fault for the next request to <paramref name="path"/>, if any.</summary>
    public HttpFault? NextHttpFault(string path)
    {
        lock (_lock)
        {
            var fault = _http.FirstOrDefault(f => f.Remaining > 0 && (f.PathContains is null || path.Contains(f.PathContains, StringComparison.Ordinal)));
            if (fault is not null)
            {
                fault.Remaining--;
            }

            return fault;
        }
    }

    /// <summary>The pod fault of a kind that matches a pod, if any.</summary>
    public PodFault? ForPod(PodFaultKind kind, JsonObject pod)
    {
        lock (_lock)
        {
            return _pods.LastOrDefault(f => f.Kind == kind && f.Matches(pod));
        }
    }

    /// <summary>Adds an HTTP fault.</summary>
    public void Add(HttpFault fault)
    {
        lock (_lock)
        {
            _http.Add(fault);
        }
    }

    /// <summary>Adds a pod fault.</summary>
    public void Add(PodFault fault)
    {
        lock (_lock)
        {
            _pods.Add(fault);
            PodFaultsVersion++;
        }
    }

    /// <summary>Removes every fault.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _http.Clear();
            _pods.Clear();
            PodFaultsVersion++;
        }
    }

    /// <summary>True while any pod fault is set.</summary>
    public bool Any
    {
        get
        {
            lock (_lock)
            {
                return _pods.Count > 0;
            }
        }
    }

    /// <summary>Changes whenever the pod faults change (a pod's simulated state may change with them).</summary>
    public long PodFaultsVersion { get; private set; }

    /// <summary>The active faults as JSON.</summary>
    public JsonObject Describe()
    {
        lock (_lock)
        {
            return new JsonObject
            {
                ["http"] = new JsonArray([.. _http.Where(f => f.Remaining > 0).Select(f => (JsonNode)new JsonObject
                {
                    ["status"] = f.Status,
                    ["remaining"] = f.Remaining,
                    ["hangSeconds"] = f.Hang.TotalSeconds,
                    ["path"] = f.PathContains,
                })]),
                ["pods"] = new JsonArray([.. _pods.Select(f => (JsonNode)new JsonObject
                {
                    ["type"] = f.Kind.ToString(),
                    ["namespace"] = f.Namespace,
                    ["selector"] = f.SelectorText,
                    ["delaySeconds"] = f.Delay.TotalSeconds,
                    ["image"] = f.Image,
                    ["ratio"] = f.Kind == PodFaultKind.Errors ? f.Ratio : null,
                    ["rps"] = f.Kind == PodFaultKind.Traffic ? f.Ratio : null,
                })]),
            };
        }
    }

    /// <summary>
    /// Adds a fault from its JSON: <c>{"type":"http","status":500,"count":3}</c>, <c>{"type":"hang","seconds":30,"count":1}</c>,
    /// <c>{"type":"reset","count":2}</c>, <c>{"type":"cut-watches"}</c>,
    /// <c>{"type":"crashloop"|"fail-jobs"|"slow","namespace":"mw-web","selector":"release=canary","seconds":30}</c>,
    /// <c>{"type":"errors","selector":"release=canary","ratio":0.2}</c> or <c>{"type":"errors","image":"mediawiki:2026-12-07","ratio":0.2}</c>
    /// (that share of the pods' simulated requests answer 5xx), <c>{"type":"traffic","selector":"release=canary","rps":0.5}</c>.
    /// </summary>
    public void Add(JsonObject spec)
    {
        var type = spec["type"]?.GetValue<string>();
        var count = (int?)JsonNumber.Long(spec["count"]) ?? 1;
        var path = spec["path"]?.GetValue<string>();
        switch (type)
        {
            case "http":
                Add(new HttpFault((int?)JsonNumber.Long(spec["status"]) ?? 500, count, TimeSpan.Zero, (int?)JsonNumber.Long(spec["retryAfter"]), path));
                break;
            case "reset":
                Add(new HttpFault(ResetStatus, count, TimeSpan.Zero, null, path));
                break;
            case "cut-watches":
                CutWatches();
                break;
            case "hang":
                Add(new HttpFault(0, count, TimeSpan.FromSeconds(JsonNumber.Double(spec["seconds"]) ?? 30), null, path));
                break;
            case "crashloop" or "fail-jobs" or "slow":
                var selector = spec["selector"]?.GetValue<string>() ?? string.Empty;
                var kind = type switch { "crashloop" => PodFaultKind.CrashLoop, "fail-jobs" => PodFaultKind.FailJob, _ => PodFaultKind.Slow };
                Add(new PodFault(kind, spec["namespace"]?.GetValue<string>(), LabelQuery.Parse(selector), selector, TimeSpan.FromSeconds(JsonNumber.Double(spec["seconds"]) ?? 0)));
                break;
            case "errors":
                var ratio = JsonNumber.Double(spec["ratio"]) ?? throw ApiError.BadRequest("an errors fault needs a ratio between 0 and 1");
                if (ratio is < 0 or > 1)
                {
                    throw ApiError.BadRequest($"ratio {ratio} is not between 0 and 1");
                }

                Add(PodFaultOf(PodFaultKind.Errors, spec) with { Ratio = ratio });
                break;
            case "traffic":
                var rps = JsonNumber.Double(spec["rps"]) ?? throw ApiError.BadRequest("a traffic fault needs rps, the requests per second of each pod");
                if (rps is < 0 or > 100_000)
                {
                    throw ApiError.BadRequest($"rps {rps} is not between 0 and 100000");
                }

                Add(PodFaultOf(PodFaultKind.Traffic, spec) with { Ratio = rps });
                break;
            default:
                throw ApiError.BadRequest("fault type must be one of http, hang, reset, cut-watches, crashloop, fail-jobs, slow, errors, traffic");
        }
    }

    private static PodFault PodFaultOf(PodFaultKind kind, JsonObject spec)
    {
        var selector = spec["selector"]?.GetValue<string>() ?? string.Empty;
        var image = spec["image"]?.GetValue<string>();
        if (selector.Length == 0 && image is null && spec["namespace"] is null)
        {
            throw ApiError.BadRequest("say which pods: a namespace, a selector or an image");
        }

        return new PodFault(kind, spec["namespace"]?.GetValue<string>(), LabelQuery.Parse(selector), selector, TimeSpan.Zero) { Image = image };
    }
}
