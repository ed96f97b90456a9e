using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.State;

namespace Capstan.Core.Rendering;

/// <summary>
/// Renders a MediaWiki release: the real system's ConfigMaps, Secrets, NetworkPolicy, Service and Deployment for
/// web and async groups; ConfigMaps, Secrets and gated CronJobs for periodic cli groups.
/// </summary>
public static class MediaWikiRenderer
{
    /// <summary>The label the main Service selects on; canaries carry their main release's name in it.</summary>
    public const string RoutedViaLabel = "routed_via";

    /// <summary>Renders the release's objects.</summary>
    public static IReadOnlyList<IKubeObject> Render(ReleaseContext ctx)
    {
        var cli = ctx.Group.Traits.Serving == ServingKind.Cli;
        var image = ctx.Values.Images.MediaWiki ?? throw Error(ctx,
            $"release {ctx.Namespace}/{ctx.Release.Name} in {ctx.Datacenter} has no MediaWiki image: set images.mediawiki " +
            $"(a deploy writes it to {string.Join(" or ", ctx.Farm.Values.For(Config.ValuesLayer.Images).Select(t => Config.ValuesLayout.Expand(t, ctx.Datacenter, ctx.Namespace, ctx.Release.Name)))})");

        var objects = new List<IKubeObject>();
        var configMaps = BuildConfigMaps(ctx, cli);
        objects.AddRange(configMaps);
        var secrets = BuildSecrets(ctx, cli);
        objects.AddRange(secrets);
        var checksums = SortedMap.Of(
            ("checksum/configuration", Checksum(configMaps)),
            ("checksum/secrets", Checksum(secrets)));
        var pod = MediaWikiPod.Build(ctx, image, secrets.Count > 0 && ctx.Values.Secrets.PrivateFiles.Count > 0);

        if (cli)
        {
            if (ctx.Group.Traits.Periodic)
            {
                objects.AddRange(BuildCronJobs(ctx, pod, checksums));
            }

            return objects;
        }

        objects.Add(BuildNetworkPolicy(ctx));
        if (ctx.Release.Canary is null)
        {
            objects.Add(BuildService(ctx));
        }

        objects.Add(BuildDeployment(ctx, pod, checksums));
        if (ctx.Values.Autoscaling is { } autoscaling && ctx.Release.Canary is null)
        {
            objects.Add(BuildAutoscaler(ctx, autoscaling));
        }

        return objects;
    }

    /// <summary>An autoscaling/v2 HorizontalPodAutoscaler for the release's Deployment (canaries follow their main release, so have none).</summary>
    private static UntypedObject BuildAutoscaler(ReleaseContext ctx, Values.AutoscalingValues autoscaling)
    {
        var name = DeploymentName(ctx.Namespace, ctx.Datacenter, ctx.Release.Name);
        return new UntypedObject("autoscaling/v2", "HorizontalPodAutoscaler", Meta(ctx, name), new System.Text.Json.Nodes.JsonObject
        {
            ["spec"] = new System.Text.Json.Nodes.JsonObject
            {
                ["scaleTargetRef"] = new System.Text.Json.Nodes.JsonObject { ["apiVersion"] = "apps/v1", ["kind"] = "Deployment", ["name"] = name },
                ["minReplicas"] = autoscaling.Min,
                ["maxReplicas"] = autoscaling.Max,
                ["metrics"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
                {
                    ["type"] = "Resource",
                    ["resource"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["name"] = "cpu",
                        ["target"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "Utilization", ["averageUtilization"] = autoscaling.TargetCpuPercent },
                    },
                }),
            },
        });
    }

    /// <summary>
    /// The objects of one maintenance-script run in a cli group: the release's ConfigMaps and Secrets and a Job that is
    /// never retried. The command is an argv array (no shell anywhere); user strings are escaped against Kubernetes'
    /// <c>$(VAR)</c> expansion so they reach the script exactly as given.
    /// </summary>
    public static IReadOnlyList<IKubeObject> RenderScriptRun(ReleaseContext ctx, ScriptRun run)
    {
        var image = ctx.Values.Images.MediaWiki ?? throw Error(ctx, $"the script group {ctx.Namespace} has no MediaWiki image: set images.mediawiki, or pass --image");
        var configMaps = BuildConfigMaps(ctx, cli: true);
        var secrets = BuildSecrets(ctx, cli: true);
        var pod = MediaWikiPod.Build(ctx, image, secrets.Count > 0 && ctx.Values.Secrets.PrivateFiles.Count > 0);
        var labels = SortedMap.Of(
            ("app", "mediawiki"),
            ("release", ctx.Release.Name),
            ("deployment", ctx.Namespace),
            ("script", ScriptRun.LabelValue(run.Script)),
            ("username", ScriptRun.LabelValue(run.User)));
        var annotations = SortedMap.Of(
            ("capstan.dev/script", run.Script),
            ("capstan.dev/user", run.User),
            ("capstan.dev/argv", System.Text.Json.JsonSerializer.Serialize(run.Argv)));
        var app = pod.Containers[0] with { Command = [.. run.Argv.Select(ContainerExpansion.Escape)] };
        var jobPod = pod with { Containers = [app, .. pod.Containers.Skip(1)], RestartPolicy = "Never" };
        var job = new Job(
            new ObjectMeta(DeploymentName(ctx.Namespace, ctx.Datacenter, ctx.Release.Name), ctx.Namespace, labels, annotations),
            new JobSpec(new PodTemplateSpec(new TemplateMeta(labels, annotations), jobPod), BackoffLimit: 0, TtlSecondsAfterFinished: 604800));
        return [.. configMaps, .. secrets, job];
    }

    /// <summary>The Deployment name of the real system: <c>mw-web.eqiad.main</c>.</summary>
    public static string DeploymentName(string ns, string dc, string release) => $"{ns}.{dc}.{release}";

    /// <summary>The pod labels of a release; a canary is routed via its main release.</summary>
    public static ImmutableSortedDictionary<string, string> PodLabels(ReleaseContext ctx) =>
        SortedMap.Of(
            ("app", "mediawiki"),
            ("release", ctx.Release.Name),
            ("deployment", ctx.Namespace),
            (RoutedViaLabel, ctx.Release.Canary?.Of ?? ctx.Release.Name));

    private static List<IKubeObject> BuildConfigMaps(ReleaseContext ctx, bool cli)
    {
        var p = ctx.Prefix;
        var maps = new List<IKubeObject>
        {
            Map(ctx, $"{p}-envoy-config-volume", MediaWikiConfigFiles.Envoy(ctx, inbound: !cli)),
            Map(ctx, $"{p}-wikimedia-cluster-config", MediaWikiConfigFiles.ClusterFile(ctx)),
            Map(ctx, $"{p}-mail-config", MediaWikiConfigFiles.Mail(ctx)),
            Map(ctx, $"{p}-php-envvars", MediaWikiConfigFiles.PhpEnvVars(ctx)),
            Map(ctx, $"{p}-rsyslog-config", MediaWikiConfigFiles.Rsyslog(ctx)),
            Map(ctx, $"{p}-mcrouter-config", MediaWikiConfigFiles.Mcrouter(ctx)),
        };
        if (!cli)
        {
            maps.Add(Map(ctx, $"{p}-httpd-sites-config", MediaWikiConfigFiles.HttpdSites(ctx)));
            maps.Add(Map(ctx, $"{p}-httpd-early-config", MediaWikiConfigFiles.HttpdEarly(ctx)));
        }

        return maps;
    }

    private static List<IKubeObject> BuildSecrets(ReleaseContext ctx, bool cli)
    {
        var secrets = new List<IKubeObject>();
        var s = ctx.Values.Secrets;
        if (!cli)
        {
            if (s.TlsCertificate is null || s.TlsKey is null)
            {
                throw Error(ctx, ctx.Environment is { } environment
                    ? $"release {ctx.Namespace}/{ctx.Release.Name} serves TLS but environment {environment.Name} has no secrets.tls.certificate and secrets.tls.key of its own: 'capstan env secrets init {environment.Name}' writes environments/{environment.Name}.secrets.yaml with fresh ones"
                    : $"release {ctx.Namespace}/{ctx.Release.Name} serves TLS but the secrets layer sets no secrets.tls.certificate and secrets.tls.key");
            }

            secrets.Add(Secret.FromPlainText(Meta(ctx, $"{ctx.Prefix}-tls-certs"), "kubernetes.io/tls",
                [KeyValuePair.Create("tls.crt", s.TlsCertificate), KeyValuePair.Create("tls.key", s.TlsKey)]));
        }

        if (s.PrivateFiles.Count > 0)
        {
            secrets.Add(Secret.FromPlainText(Meta(ctx, $"{ctx.Prefix}-private-settings"), "Opaque", s.PrivateFiles));
        }

        return secrets;
    }

    private static NetworkPolicy BuildNetworkPolicy(ReleaseContext ctx)
    {
        var ports = new List<NetworkPolicyPort>
        {
            new("TCP", ctx.TlsPort),
            new("TCP", MediaWikiPod.HttpdExporterPort),
            new("TCP", MediaWikiPod.PhpFpmExporterPort),
            new("TCP", MediaWikiPod.HttpdStatusPort),
        };
        return new NetworkPolicy(
            Meta(ctx, ctx.Prefix),
            new NetworkPolicySpec(
                new LabelSelector(SortedMap.Of(("app", "mediawiki"), ("release", ctx.Release.Name))),
                ["Ingress"],
                Ingress: [new NetworkPolicyRule(Ports: ports)]));
    }

    private static Service BuildService(ReleaseContext ctx)
    {
        var nodePort = ctx.Values.TlsNodePort;
        return new Service(
            Meta(ctx, $"{ctx.Prefix}-tls-service"),
            new ServiceSpec(
                nodePort is null ? "ClusterIP" : "NodePort",
                SortedMap.Of(("app", "mediawiki"), (RoutedViaLabel, ctx.Release.Name)),
                [new ServicePort($"{ctx.Prefix}-https", "TCP", ctx.TlsPort, ctx.TlsPort, nodePort)]));
    }

    private static Deployment BuildDeployment(ReleaseContext ctx, PodSpec pod, ImmutableSortedDictionary<string, string> checksums)
    {
        var canary = ctx.Release.Canary;
        int replicas;
        DeploymentStrategy strategy;
        if (canary is not null)
        {
            var main = ctx.Group.Releases.First(r => r.Name == canary.Of);
            replicas = canary.ReplicasFor(main.Replicas?.For(ctx.Datacenter) ?? 0);
            strategy = DeploymentStrategy.Recreate;
        }
        else
        {
            replicas = ctx.Release.Replicas?.For(ctx.Datacenter) ?? 0;
            strategy = DeploymentStrategy.Rolling(ctx.Values.Rollout.MaxSurge, ctx.Values.Rollout.MaxUnavailable);
        }

        // With an autoscaler, replicas are its field: Capstan does not send them, so an apply never resets its choice.
        int? sentReplicas = ctx.Values.Autoscaling is not null && canary is null ? null : replicas;

        var podLabels = PodLabels(ctx);
        var labels = SortedMap.Of(("app", "mediawiki"), ("release", ctx.Release.Name), ("deployment", ctx.Namespace));
        return new Deployment(
            Meta(ctx, DeploymentName(ctx.Namespace, ctx.Datacenter, ctx.Release.Name), labels),
            new DeploymentSpec(
                sentReplicas,
                new LabelSelector(SortedMap.Of(("app", "mediawiki"), ("release", ctx.Release.Name))),
                strategy,
                new PodTemplateSpec(new TemplateMeta(podLabels, checksums), pod),
                ProgressDeadlineSeconds: ctx.Values.Rollout.ProgressDeadlineSeconds,
                RevisionHistoryLimit: 10));
    }

    private static IEnumerable<IKubeObject> BuildCronJobs(ReleaseContext ctx, PodSpec pod, ImmutableSortedDictionary<string, string> checksums)
    {
        var state = ctx.State ?? throw Error(ctx,
            $"release {ctx.Namespace}/{ctx.Release.Name} runs periodic maintenance, so it needs the dynamic state (primary_dc, read_only, maintenance_enabled); none was given");
        // Production has CronJobs only where the gate allows them. An environment has its CronJobs in its primary
        // datacenter, suspended unless its own state enables maintenance, and suspended while it shares any backend
        // with production.
        var runs = MaintenanceGate.AllowsCronJobs(state, ctx.Datacenter);
        if (!runs && (ctx.Environment is null || state.PrimaryDc != ctx.Datacenter))
        {
            yield break;
        }

        var suspended = !runs || ctx.Environment?.Backends?.FromProduction.Any() == true;

        foreach (var job in ctx.Release.CronJobs)
        {
            var labels = SortedMap.Of(("app", "mediawiki"), ("release", ctx.Release.Name), ("deployment", ctx.Namespace), ("cronjob", job.Name));
            var app = pod.Containers[0] with { Command = job.Command };
            var jobPod = pod with { Containers = [app, .. pod.Containers.Skip(1)], RestartPolicy = "Never" };
            var annotations = job.Description is null ? checksums : checksums.Add("capstan.dev/description", job.Description);
            yield return new CronJob(
                Meta(ctx, job.Name, labels),
                new CronJobSpec(
                    job.Schedule,
                    ConcurrencyPolicy: "Replace",
                    Suspend: job.Suspended || suspended,
                    SuccessfulJobsHistoryLimit: 1,
                    FailedJobsHistoryLimit: 3,
                    JobTemplate: new JobTemplateSpec(
                        new TemplateMeta(labels),
                        new JobSpec(
                            new PodTemplateSpec(new TemplateMeta(labels, annotations), jobPod),
                            BackoffLimit: 0,
                            TtlSecondsAfterFinished: 604800)),
                    TimeZone: "Etc/UTC"));
        }
    }

    internal static ObjectMeta Meta(ReleaseContext ctx, string name, ImmutableSortedDictionary<string, string>? labels = null) =>
        new(name, ctx.Namespace, labels);

    private static ConfigMap Map(ReleaseContext ctx, string name, Dictionary<string, string> data) =>
        new(Meta(ctx, name), SortedMap.From(data));

    private static string Checksum(IEnumerable<IKubeObject> objects)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var obj in objects)
        {
            hash.AppendData(KubeSerializer.ToUtf8Bytes(obj));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    internal static RepoValidationException Error(ReleaseContext ctx, string message) =>
        new([new Diagnostic(Severity.Error, ctx.Release.Location, message)]);

    internal static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
