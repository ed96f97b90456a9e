using System.Net;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Api;
using Capstan.LocalCluster.Auth;
using Capstan.LocalCluster.Controllers;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Capstan.LocalCluster;

/// <summary>Where and how a local cluster runs.</summary>
public sealed record LocalClusterOptions
{
    /// <summary>The directory holding the cluster's objects between runs; null keeps everything in memory.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>The loopback port; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>How long simulated things take.</summary>
    public SimulationTiming Timing { get; init; } = SimulationTiming.Instant;

    /// <summary>The clock controllers decide by (schedules, readiness delays, progress deadlines).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Serve HTTPS with this certificate instead of one the server makes (with its own CA) at start.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? TlsCertificate { get; init; }

    /// <summary>The intermediate certificates sent with <see cref="TlsCertificate"/> (from it towards the root).</summary>
    public IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> TlsCertificateChain { get; init; } = [];

    /// <summary>Where the server reports its own errors (controller failures); null drops them.</summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }

    /// <summary>The administrator's bearer token (user <c>capstan-admin</c>, group <c>system:masters</c>); null picks a random one.</summary>
    public string? AdminToken { get; init; }

    /// <summary>More users, by bearer token (the lines of a static token file, see <see cref="Authenticator.ReadTokenFile"/>).</summary>
    public IReadOnlyList<(string Token, UserInfo User)> Users { get; init; } = [];

    /// <summary>
    /// How many nodes the cluster has (<c>local-node-1</c>…). One by default, big enough to hold any farm (as the
    /// cluster behaved before it had nodes); with more, each has <see cref="NodeCapacity"/>.
    /// </summary>
    public int Nodes { get; init; } = 1;

    /// <summary>What each node offers (allocatable = capacity); null for the defaults.</summary>
    public IReadOnlyDictionary<string, string>? NodeCapacity { get; init; }

    /// <summary>A node of several: 64 CPUs, 256 GiB, 110 pods (the kubelet's default pod limit).</summary>
    public static IReadOnlyDictionary<string, string> DefaultNodeCapacity { get; } = new Dictionary<string, string> { ["cpu"] = "64", ["memory"] = "256Gi", ["pods"] = "110" };

    /// <summary>The one node of a default cluster: room for any farm.</summary>
    public static IReadOnlyDictionary<string, string> OneNodeCapacity { get; } = new Dictionary<string, string> { ["cpu"] = "100k", ["memory"] = "1Pi", ["pods"] = "100k" };

    /// <summary>
    /// How fast a node pulls image layers, in bytes per second; null pulls at once (images are simply there). With a
    /// rate, a pod starts only once its node holds every layer of its images: a node pulls only the layers it lacks,
    /// and keeps them for the next pod.
    /// </summary>
    public long? PullBandwidth { get; init; }

    /// <summary>What the registry can send to the whole cluster at once, in bytes per second (shared by the pulls in flight); null for no limit.</summary>
    public long? RegistryEgress { get; init; }

    /// <summary>The size taken for an image whose layers are unknown (one not in the farm's OCI layout).</summary>
    public long DefaultImageBytes { get; init; } = 500L << 20;

    /// <summary>The OCI layout behind <c>capstan.local/</c> image references (the farm's <c>registry: oci-layout://…</c>).</summary>
    public string? ImageLayout { get; init; }

    /// <summary>
    /// The images the nodes of a cluster with a <see cref="DataDirectory"/> can pull, besides those of the OCI layout:
    /// read when the directory has no image list yet (a new cluster), which is kept there from then on and changed by
    /// <c>capstan local images</c> or <c>/capstan/images</c>. Null: every image can be pulled.
    /// </summary>
    public Func<IEnumerable<string>>? SeedImages { get; init; }
}

/// <summary>
/// An embedded Kubernetes API server on 127.0.0.1 with simulated controllers. It serves the resources Capstan uses
/// over real HTTP, so the same client code talks to it and to a real cluster.
/// </summary>
public sealed class LocalClusterServer : IAsyncDisposable
{
    /// <summary>The requests served, as kube-apiserver's <c>apiserver_request_total</c> (also at <c>/metrics</c>).</summary>
    public Api.RequestMetrics Metrics { get; } = new();

    /// <summary>The simulated traffic of the MediaWiki pods (its counters at <c>/capstan/pod-metrics</c>, for a Prometheus to scrape).</summary>
    public PodTraffic Traffic { get; }

    /// <summary>The snapshot file of clusters written before the database; imported once, then removed.</summary>
    private const string LegacySnapshotFile = "objects.json";

    private readonly LocalClusterOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _quietLock = new();
    private List<TaskCompletionSource> _pendingQuiet = [];
    private WebApplication? _app;
    private Task? _controllerLoop;
    private ClusterDatabase? _database;
    private ServingCertificate? _serving;

    private LocalClusterServer(LocalClusterOptions options)
    {
        _options = options;
        Store = new ObjectStore(options.Time);
        Faults = new FaultInjector();
        Traffic = new PodTraffic(Store, Faults, _options.Time);
        var imageList = options.DataDirectory is { } dir && options.SeedImages is { } seed ? Path.Combine(dir, ImageCatalog.FileName) : null;
        if (imageList is not null && !File.Exists(imageList))
        {
            ImageCatalog.Write(imageList, options.SeedImages!());
        }

        Images = new ImageCatalog(options.ImageLayout, imageList);
        Authenticator = new Authenticator(options.AdminToken ?? Authenticator.NewToken(), options.Users);
    }

    /// <summary>Who may connect: the admin token and the users.</summary>
    public Authenticator Authenticator { get; }

    /// <summary>The PEM of the CA that signed the serving certificate (null when the certificate was given).</summary>
    public string? CertificateAuthorityPem => _serving?.AuthorityPem;

    /// <summary>The administrator's bearer token (every request needs a token).</summary>
    public string AdminToken => Authenticator.AdminToken;

    /// <summary>The objects.</summary>
    public ObjectStore Store { get; }

    /// <summary>The fault injector (also reachable at <c>/capstan/faults</c>).</summary>
    public FaultInjector Faults { get; }

    /// <summary>The pullable images (also at <c>/capstan/images</c>).</summary>
    public ImageCatalog Images { get; }

    /// <summary>The server's URL, <c>https://127.0.0.1:PORT</c>.</summary>
    public Uri Url { get; private set; } = new("https://127.0.0.1");

    /// <summary>Starts a server; loads the data directory's objects when it has any.</summary>
    public static async Task<LocalClusterServer> StartAsync(LocalClusterOptions options, CancellationToken cancellationToken)
    {
        var server = new LocalClusterServer(options);
        await server.StartCoreAsync(cancellationToken);
        return server;
    }

    /// <summary>Runs every controller once, now (tests use it with a manual clock).</summary>
    public void RunControllers()
    {
        lock (_stop)
        {
            var time = _options.Time;
            _collector.Reconcile();
            _namespaces.Reconcile();
            _definitions.Reconcile();
            _endpoints.Reconcile();
            _quotas.Reconcile();
            _events.Expire();
            _deployments.Reconcile();
            _replicaSets.Reconcile();
            _daemonSets.Reconcile();
            _statefulSets.Reconcile();
            _scheduler.Reconcile();
            _kubelet.Reconcile();
            new JobController(Store, time, _events).Reconcile();
            new CronJobController(Store, time, _events).Reconcile();
            Autoscalers.Reconcile();
        }
    }

    private EventRecorder _events = null!;
    private GarbageCollector _collector = null!;
    private NamespaceController _namespaces = null!;
    private DefinitionController _definitions = null!;
    private EndpointsController _endpoints = null!;
    private ResourceQuotaController _quotas = null!;
    private DaemonSetController _daemonSets = null!;
    private StatefulSetController _statefulSets = null!;
    private ReplicaSetController _replicaSets = null!;
    private DeploymentController _deployments = null!;
    private Kubelet _kubelet = null!;

    /// <summary>
    /// What the simulated registry sent to the nodes since the last call: bytes, and the peak rate in bytes per second (the most within one second);
    /// null when pulls are not simulated (no <see cref="LocalClusterOptions.PullBandwidth"/>).
    /// </summary>
    public (long Bytes, double PeakPerSecond)? TakeRegistryEgress() => _kubelet.Pulls?.TakeEgress();
    private Scheduler _scheduler = null!;

    /// <summary>How many times the Deployment and ReplicaSet controllers reconciled one object, and the kubelet looked at a pod, since start.</summary>
    internal (long Deployments, long ReplicaSets, long Pods) Reconciliations
    {
        get
        {
            lock (_stop)
            {
                return (_deployments.Reconciliations, _replicaSets.Reconciliations, _kubelet.PodsExamined);
            }
        }
    }

    /// <summary>The autoscaler controller (its simulated metric is set at <c>/capstan/autoscale</c>).</summary>
    internal HorizontalPodAutoscalerController Autoscalers { get; private set; } = null!;

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        _events = new EventRecorder(Store, _options.Time);
        _collector = new GarbageCollector(Store);
        _namespaces = new NamespaceController(Store, () => CertificateAuthorityPem);
        _definitions = new DefinitionController(Store);
        _endpoints = new EndpointsController(Store);
        _quotas = new ResourceQuotaController(Store);
        _daemonSets = new DaemonSetController(Store, _events);
        _statefulSets = new StatefulSetController(Store, _events);
        _replicaSets = new ReplicaSetController(Store, _events, _options.Time);
        _deployments = new DeploymentController(Store, _options.Time, _events);
        _kubelet = new Kubelet(Store, Faults, Images, _options.Timing, _options.Time, _events)
        {
            Pulls = _options.PullBandwidth is { } bandwidth ? new ImagePulls(Images, bandwidth, _options.RegistryEgress, _options.DefaultImageBytes) : null,
        };
        _scheduler = new Scheduler(Store, _options.Time, _events);
        Autoscalers = new HorizontalPodAutoscalerController(Store, _options.Time, _options.Timing.AutoscalerSync);
        if (_options.DataDirectory is { } dir)
        {
            var legacy = Path.Combine(dir, LegacySnapshotFile);
            _database = ClusterDatabase.Open(dir);
            Store.Attach(_database, File.Exists(legacy) ? await File.ReadAllTextAsync(legacy, cancellationToken) : null);
            File.Delete(legacy);
        }

        // A fresh cluster has the namespaces every real cluster has.
        var namespaces = ResourceTypes.ByKind("Namespace")!;
        foreach (var name in new[] { "default", "kube-system", "kube-public" })
        {
            if (Store.Get(namespaces, null, name) is null)
            {
                Store.Create(namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = name } }, "kube-apiserver");
            }
        }

        // Its nodes, as their kubelets would register them.
        var nodes = ResourceTypes.ByKind("Node")!;
        var capacity = _options.NodeCapacity ?? (_options.Nodes == 1 ? LocalClusterOptions.OneNodeCapacity : LocalClusterOptions.DefaultNodeCapacity);
        for (var n = 1; n <= _options.Nodes; n++)
        {
            var name = $"local-node-{n}";
            if (Store.Get(nodes, null, name) is null)
            {
                JsonObject Quantities() => new(capacity.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
                Store.Create(nodes, null, new JsonObject
                {
                    ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["kubernetes.io/hostname"] = name, ["kubernetes.io/os"] = "linux" } },
                    ["spec"] = NodeSpec(name),
                    ["status"] = new JsonObject
                    {
                        ["capacity"] = Quantities(),
                        ["allocatable"] = Quantities(),
                        ["conditions"] = new JsonArray(new JsonObject
                        {
                            ["type"] = "Ready", ["status"] = "True", ["reason"] = "KubeletReady", ["message"] = "kubelet is posting ready status",
                            ["lastHeartbeatTime"] = Controllers.Json.Stamp(_options.Time.GetUtcNow()), ["lastTransitionTime"] = Controllers.Json.Stamp(_options.Time.GetUtcNow()),
                        }),
                        ["addresses"] = new JsonArray(new JsonObject { ["type"] = "InternalIP", ["address"] = $"10.{n / 256}.{n % 256}.1" }, new JsonObject { ["type"] = "Hostname", ["address"] = name }),
                        ["nodeInfo"] = NodeInfo(name),
                    },
                }, "kubelet");
            }
        }

        // A node registered by an older version lacks what clients' typed models require (its spec, the whole nodeInfo).
        foreach (var node in Store.ListShared(nodes, null).Items.Where(n => n["status"]?["nodeInfo"]?["bootID"] is null || n["spec"]?["providerID"] is null))
        {
            var status = (JsonObject)node["status"]!.DeepClone();
            status["nodeInfo"] = NodeInfo(node.Kube.Name);
            Store.Update(nodes, null, node.Kube.Name, new JsonObject { ["status"] = status }, statusOnly: true, "kubelet");
            var withSpec = (JsonObject)Store.Get(nodes, null, node.Kube.Name)!.DeepClone();
            var spec = withSpec["spec"] as JsonObject ?? (JsonObject)(withSpec["spec"] = new JsonObject());
            foreach (var (key, value) in NodeSpec(node.Kube.Name))
            {
                spec[key] ??= value!.DeepClone();
            }

            Store.Update(nodes, null, node.Kube.Name, withSpec, statusOnly: false, "kubelet");
        }

        // A node's image cache is not kept between runs: what its status said it held is gone.
        foreach (var node in Store.ListShared(nodes, null).Items.Where(n => n["status"]?["images"] is not null))
        {
            var status = (JsonObject)node["status"]!.DeepClone();
            status.Remove("images");
            Store.Update(nodes, null, node.Kube.Name, new JsonObject { ["status"] = status }, statusOnly: true, "kubelet");
        }

        // And the default roles and bindings every real cluster has.
        foreach (var (kind, defaults) in new[] { ("ClusterRole", BootstrapPolicy.ClusterRoles()), ("ClusterRoleBinding", BootstrapPolicy.ClusterRoleBindings()) })
        {
            var type = ResourceTypes.ByKind(kind)!;
            foreach (var item in defaults)
            {
                if (Store.Get(type, null, item.Kube.Name) is null)
                {
                    Store.Create(type, null, item, "kube-apiserver");
                }
            }
        }

        if (_options.TlsCertificate is null)
        {
            // On the system clock: clients judge the certificate by theirs, whatever clock the simulation runs on.
            _serving = ServingCertificate.Create(TimeProvider.System);
        }

        var certificate = _options.TlsCertificate ?? _serving!.Certificate;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, _options.Port, o =>
            {
                // HTTP/2 as kube-apiserver serves it (negotiated by ALPN), HTTP/1.1 for clients that ask for it.
                o.Protocols = HttpProtocols.Http1AndHttp2;
                o.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
                {
                    ServerCertificate = certificate,
                    ServerCertificateChain = [.. _options.TlsCertificateChain],
                });
            });
            k.Limits.MaxRequestBodySize = 16 * 1024 * 1024;
        });
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        var handler = new ApiHandler(Store, Faults, Images, _options.Timing, () => Url.Authority, Authenticator) { Autoscale = Autoscalers.Want, Metrics = Metrics, Traffic = Traffic };
        app.Use(handler.FilterAsync);
        handler.MapEndpoints(app);
        await app.StartAsync(cancellationToken);
        _app = app;
        var address = app.Urls.First();
        Url = new Uri(address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal).Replace("://127.0.0.1", _options.TlsCertificate is null ? "://127.0.0.1" : "://localhost", StringComparison.Ordinal));

        Store.Changed += () =>
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        };
        _controllerLoop = Task.Run(ControllerLoopAsync, CancellationToken.None);
    }

    /// <summary>
    /// Completes once the controllers have run a whole pass, begun after this call, that changed nothing: whatever they
    /// do about what is stored now, they have done (for checks that something does <em>not</em> happen).
    /// </summary>
    public Task QuietAsync(CancellationToken cancellationToken = default)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_quietLock)
        {
            _pendingQuiet.Add(waiter);
        }

        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }

        return waiter.Task.WaitAsync(cancellationToken);
    }

    private async Task ControllerLoopAsync()
    {
        // Passes run when the store changes (a burst of writes is coalesced into one pass) and, for time-based
        // transitions, on a tick that backs off while passes change nothing.
        var idle = _options.Timing.Tick;
        var maxIdle = TimeSpan.FromMilliseconds(Math.Max(_options.Timing.Tick.TotalMilliseconds, 250));
        while (!_stop.IsCancellationRequested)
        {
            bool woken;
            try
            {
                woken = await _wake.WaitAsync(idle, _stop.Token);
                if (woken)
                {
                    await Task.Delay(_options.Timing.ControllerLatency, _stop.Token);
                    while (_wake.CurrentCount > 0)
                    {
                        await _wake.WaitAsync(_stop.Token);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var before = Store.ResourceVersion;
            List<TaskCompletionSource> armed;
            lock (_quietLock)
            {
                // The waiters registered before this pass began: a pass that changes nothing answers them.
                (armed, _pendingQuiet) = (_pendingQuiet, []);
            }

            try
            {
                RunControllers();
            }
            catch (ApiError)
            {
                // A controller raced a user's write; the next pass sees the new state.
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException)
            {
                // An object a controller cannot work on (its readers say which field it lacks, as an
                // InvalidOperationException) must not stop the others; report it where the server's owner sees it.
                if (_options.Logger is { } log)
                {
                    Microsoft.Extensions.Logging.LoggerExtensions.LogError(log, ex, "controller error");
                }
            }

            var changed = Store.ResourceVersion != before;
            if (changed)
            {
                lock (_quietLock)
                {
                    _pendingQuiet.AddRange(armed);
                }
            }
            else
            {
                armed.ForEach(w => w.TrySetResult());
            }

            idle = changed || woken ? _options.Timing.Tick : TimeSpan.FromTicks(Math.Min(maxIdle.Ticks, idle.Ticks * 2));
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_controllerLoop is not null)
        {
            await _controllerLoop;
        }

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _stop.Dispose();
        _wake.Dispose();
        _database?.Dispose();
        _serving?.Dispose();
    }

    /// <summary>A node's spec as kube-controller-manager leaves it: its pod CIDR.</summary>
    private static JsonObject NodeSpec(string name)
    {
        var n = int.TryParse(name.AsSpan(name.LastIndexOf('-') + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) ? i : 0;
        var cidr = $"10.244.{n % 256}.0/24";
        return new JsonObject { ["podCIDR"] = cidr, ["podCIDRs"] = new JsonArray(cidr), ["providerID"] = $"capstan-local://{name}" };
    }

    /// <summary>What a kubelet reports about its machine: every field clients' typed models require, stable per node.</summary>
    private static JsonObject NodeInfo(string name)
    {
        var id = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name))).ToLowerInvariant();
        string Uuid(int from) => $"{id[from..(from + 8)]}-{id[(from + 8)..(from + 12)]}-{id[(from + 12)..(from + 16)]}-{id[(from + 16)..(from + 20)]}-{id[(from + 20)..(from + 32)]}";
        return new JsonObject
        {
            ["machineID"] = id[..32],
            ["systemUUID"] = Uuid(0),
            ["bootID"] = Uuid(32),
            ["kernelVersion"] = Environment.OSVersion.Version.ToString(),
            ["osImage"] = "Capstan embedded node",
            ["containerRuntimeVersion"] = "simulated://1",
            ["kubeletVersion"] = "v1.32.0-capstan",
            ["kubeProxyVersion"] = "v1.32.0-capstan",
            ["operatingSystem"] = "linux",
            ["architecture"] = "amd64",
        };
    }
}
