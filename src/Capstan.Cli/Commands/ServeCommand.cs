using System.CommandLine;
using System.Net;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Web;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan serve</c>: the farm's dashboard and JSON API.</summary>
internal sealed class ServeCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var listen = new Option<string>("--listen")
        {
            Description = "Where to serve, HOST:PORT (default 127.0.0.1:8080; port 0 picks a free one)",
            HelpName = "HOST:PORT",
            DefaultValueFactory = _ => "127.0.0.1:8080",
        };
        var tokens = new Option<string?>("--tokens")
        {
            Description = "Who may change things: TOKEN,NAME per line (kube-apiserver's static token format), readable by its owner only; without it the dashboard is read-only",
            HelpName = "FILE",
        };
        var command = new Command("serve", "Serve the farm's dashboard and JSON API (/api/v1, /metrics) until interrupted: read-only without a sign-in, changes need a token")
        {
            repo, state, listen, tokens,
        };
        command.SetAction(async (parse, ct) =>
        {
            var endpoint = ParseListen(parse.GetValue(listen)!);
            var users = parse.GetValue(tokens) is { } file ? Users.Load(env.Resolve(file)) : Users.None;
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
            await using var data = new DashboardData(session.Repo.Model, session.Repo.Files, session.Clusters, session.Store, TimeProvider.System);
            await using var dashboard = await Dashboard.StartAsync(data, new DashboardOptions(endpoint, users) { Logger = env.Logger("serve") }, TimeProvider.System, ct);
            console.Profile.Out.Writer.WriteLine(dashboard.Url.ToString().TrimEnd('/'));
            console.Profile.Out.Writer.Flush();
            if (!IPAddress.IsLoopback(endpoint.Address))
            {
                error.WriteLine($"capstan: warning: serving on {endpoint}, beyond this machine, over plain HTTP: tokens and sessions cross the network unencrypted; put a TLS proxy in front");
            }

            error.WriteLine($"capstan: serving {session.Repo.Model.Project} on {dashboard.Url} {(users.Any ? "(changes need a sign-in)" : "(read-only: no --tokens)")} until interrupted (Ctrl-C)");
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static IPEndPoint ParseListen(string text)
    {
        var colon = text.LastIndexOf(':');
        var host = colon > 0 ? text[..colon].Trim('[', ']') : string.Empty;
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], out var port) || port is < 0 or > 65535)
        {
            throw new UserInputException($"--listen '{text}' is not HOST:PORT (such as 127.0.0.1:8080)");
        }

        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        return IPAddress.TryParse(host, out var address)
            ? new IPEndPoint(address, port)
            : throw new UserInputException($"--listen '{text}': '{host}' is not an IP address (such as 127.0.0.1, or 0.0.0.0 for every interface)");
    }
}
