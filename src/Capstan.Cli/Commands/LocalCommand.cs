using System.CommandLine;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Security;
using Capstan.LocalCluster;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan local serve | kubeconfig | prometheus | images | reset</c>: the embedded Kubernetes API server of a datacenter.</summary>
internal sealed class LocalCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build() => new("local", "The embedded local cluster (local://DC): serve it for kubectl and other clients, write a kubeconfig for a served one, scrape its pods with Prometheus, list the images its nodes can pull, or wipe it")
    {
        BuildServe(), BuildKubeconfig(), new LocalPrometheusCommand(console, error, env).Build(), new LocalImagesCommand(console, error, env).Build(), BuildReset(),
    };

    private Command BuildServe()
    {
        var repo = CommonOptions.Repo();
        var dc = new Option<string>("--dc") { Description = "The datacenter whose local cluster to serve", Required = true, HelpName = "DC" };
        var port = new Option<int>("--port") { Description = "The loopback port (default: a free one)", HelpName = "N" };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "Write a kubeconfig for the server to FILE", HelpName = "FILE" };
        var realistic = new Option<bool>("--realistic") { Description = "Pods take seconds to start and nodes pull images at 1Gbit/s from a registry of 10Gbit/s, as on a real cluster (default: instant, images simply there)" };
        var nodes = new Option<int>("--nodes")
        {
            Description = "How many nodes the cluster has, each with 64 CPUs, 256 GiB and room for 110 pods (default: one node that holds anything); pods that fit nowhere stay Pending",
            DefaultValueFactory = _ => 1,
            HelpName = "N",
        };
        var users = new Option<string?>("--users")
        {
            Description = "More users, one per line: token,user,uid,\"group1,group2\" (kube-apiserver's static token file); grant them rights with Roles and RoleBindings",
            HelpName = "FILE",
        };
        var pullBandwidth = new Option<string?>("--pull-bandwidth")
        {
            Description = "Simulate image pulls: each node pulls the layers it lacks at this rate (125MB/s, 1Gbit/s); pods start once their images are there (default: 1Gbit/s with --realistic, else off; 'off' turns it off)",
            HelpName = "RATE",
        };
        var registryEgress = new Option<string?>("--registry-egress")
        {
            Description = "What the registry sends to the whole cluster at once, shared by the pulls in flight (with pulls on; default: 10Gbit/s with --realistic, else no limit)",
            HelpName = "RATE",
        };
        var command = new Command("serve", "Run the local cluster's API server on 127.0.0.1 (HTTPS, bearer tokens, RBAC) until interrupted") { dc, repo, port, kubeconfig, realistic, nodes, pullBandwidth, registryEgress, users };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var name = parse.GetValue(dc)!;
            CheckDatacenter(session.Model, name);

            var requestedPort = parse.GetValue(port);
            if (requestedPort is < 0 or > 65535)
            {
                throw new UserInputException($"--port must be between 0 and 65535, not {requestedPort}");
            }

            if (parse.GetValue(nodes) is < 1 or > 5000)
            {
                throw new UserInputException($"--nodes must be between 1 and 5000, not {parse.GetValue(nodes)}");
            }

            // Realistic timing pulls images too, unless told otherwise.
            var pulls = parse.GetValue(pullBandwidth) switch
            {
                { } off when off.Equals("off", StringComparison.OrdinalIgnoreCase) => (long?)null,
                { } rate => Rate(rate, "--pull-bandwidth"),
                null => parse.GetValue(realistic) ? 125_000_000 : null,
            };
            if (pulls is null && parse.GetValue(registryEgress) is not null)
            {
                throw new UserInputException("--registry-egress needs image pulls: give --pull-bandwidth RATE or --realistic");
            }

            var options = new LocalClusterOptions
            {
                Port = requestedPort,
                Nodes = parse.GetValue(nodes),
                PullBandwidth = pulls,
                RegistryEgress = parse.GetValue(registryEgress) is { } egress ? Rate(egress, "--registry-egress") : pulls is not null && parse.GetValue(realistic) ? 1_250_000_000 : null,
                Timing = parse.GetValue(realistic) ? SimulationTiming.Realistic : SimulationTiming.Instant,
                Logger = env.Logger($"local://{name}"),
                ImageLayout = session.Model.RegistryLayout,
                SeedImages = () => RepoImages.Named(session.Model),
                Users = parse.GetValue(users) is { } usersFile ? Capstan.LocalCluster.Auth.Authenticator.ReadTokenFile(env.Resolve(usersFile)) : [],
            };
            await using var host = await LocalClusterHost.OpenAsync(LocalClusterHost.DirectoryFor(session.Files.Root, LocalClusterName(session, name)), options, requireOwnServer: true, ct);
            if (parse.GetValue(kubeconfig) is { } file)
            {
                var path = env.Resolve(file);
                await PrivateFiles.WriteAllTextAsync(path, host.Kubeconfig($"capstan-local-{name}"), ct);
                error.WriteLine($"capstan: wrote kubeconfig {file} (context capstan-local-{name})");
            }

            console.Profile.Out.Writer.WriteLine(host.Url.ToString().TrimEnd('/'));
            console.Profile.Out.Writer.Flush();
            error.WriteLine($"capstan: serving local://{name} on {host.Url} until interrupted (Ctrl-C)");
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
            }

            error.WriteLine("capstan: stopping (every object was stored as it was written)");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Refuses a datacenter the repo does not have, naming those it has.</summary>
    internal static void CheckDatacenter(Core.Config.FarmModel model, string name)
    {
        if (!model.DatacenterNames.Contains(name))
        {
            throw new UserInputException($"unknown datacenter '{name}' (allowed: {string.Join(", ", model.DatacenterNames)})");
        }
    }

    /// <summary>The local cluster a datacenter uses (<c>local://NAME</c>); a datacenter on another cluster is refused.</summary>
    private static string LocalClusterName(RepoSession session, string dc)
    {
        var cluster = session.Model.Datacenters.First(d => d.Name == dc).Cluster;
        return LocalClusterHost.ClusterName(cluster)
            ?? throw new UserInputException($"datacenter {dc} uses {cluster}, not an embedded cluster (local://NAME)");
    }

    /// <summary>A rate in bytes per second from <c>125MB/s</c>, <c>1Gbit/s</c>, <c>10Gbps</c> or a plain number of bytes per second.</summary>
    internal static long Rate(string text, string option) =>
        Core.Config.Rates.TryParse(text) ?? throw new UserInputException($"{option} '{text}' is not a rate (such as 125MB/s, 1Gbit/s or 10Gbps)");

    private Command BuildKubeconfig()
    {
        var repo = CommonOptions.Repo();
        var dc = new Option<string>("--dc") { Description = "The datacenter whose served local cluster to reach", Required = true, HelpName = "DC" };
        var outFile = new Option<string?>("--out") { Description = "Where to write it (default: .capstan/kubeconfig-DC in the repo); written readable by you alone, as it holds the admin token", HelpName = "FILE" };
        var command = new Command("kubeconfig", "Write a kubeconfig for a local cluster that 'capstan local serve' or 'capstan serve' is serving, for kubectl and other clients") { dc, repo, outFile };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var name = parse.GetValue(dc)!;
            CheckDatacenter(session.Model, name);

            var cluster = LocalClusterName(session, name);
            var served = LocalClusterHost.RunningServer(LocalClusterHost.DirectoryFor(session.Files.Root, cluster))
                ?? throw new UserInputException($"local://{cluster} is not served: start 'capstan local serve --dc {name}' or 'capstan serve', then run this again");
            var file = parse.GetValue(outFile) ?? Path.Combine(session.Files.Root, ".capstan", $"kubeconfig-{name}");
            var path = env.Resolve(file);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await PrivateFiles.WriteAllTextAsync(path, LocalClusterHost.KubeconfigFor($"capstan-local-{name}", served.Url, served.Token, served.Authority), ct);
            console.Profile.Out.Writer.WriteLine(path);
            error.WriteLine($"capstan: wrote kubeconfig {file} (context capstan-local-{name}); try: KUBECONFIG={file} kubectl get pods -A");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildReset()
    {
        var repo = CommonOptions.Repo();
        var dc = new Option<string>("--dc") { Description = "The datacenter whose local cluster to wipe", Required = true, HelpName = "DC" };
        var command = new Command("reset", "Delete every object of a local cluster") { dc, repo };
        command.SetAction(parse =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var name = parse.GetValue(dc)!;
            CheckDatacenter(session.Model, name);

            LocalClusterHost.Reset(LocalClusterHost.DirectoryFor(session.Files.Root, LocalClusterName(session, name)));
            console.Profile.Out.Writer.WriteLine($"local://{name}: reset");
            return ExitCodes.Success;
        });
        return command;
    }
}
