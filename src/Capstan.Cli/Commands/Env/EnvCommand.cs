using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env create | list | show | drift | refresh | extend | sleep | wake | delete | gc | secrets</c>: owned, expiring test environments of the farm. Each verb is a class beside this file; this one groups them and holds what they share.</summary>
internal sealed class EnvCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var command = new Command("env", "Test environments: small, owned, expiring copies of production's server groups in their own namespaces");
        command.Add(new EnvCreateCommand(console, error, env, this).Build());
        command.Add(new EnvListCommand(console, env).Build());
        command.Add(new EnvShowCommand(console, env).Build());
        command.Add(new EnvDriftCommand(console, env, this).Build());
        command.Add(new EnvRefreshCommand(console, error, env, this).Build());
        command.Add(new EnvExtendCommand(console, env, this).Build());
        command.Add(new EnvSleepCommand(console, env, this).Build(sleep: true));
        command.Add(new EnvSleepCommand(console, env, this).Build(sleep: false));
        command.Add(new EnvDeleteCommand(console, error, env, this).Build());
        command.Add(new EnvGcCommand(console, error, env).Build());
        command.Add(new EnvSecretsCommand(console, env).Build());
        return command;
    }

    /// <summary>The selection that connects to every datacenter of an environment.</summary>
    internal static RenderSelection Selection(EnvironmentRecord record) => new(record.Datacenters.Count == 1 ? record.Datacenters[0] : null);

    /// <summary>A record's JSON with its URLs by group.</summary>
    internal static JsonObject WithUrls(JsonObject doc, IReadOnlyList<(string Group, string Url)> urls)
    {
        doc["urls"] = new JsonObject([.. urls.Select(u => KeyValuePair.Create(u.Group, (JsonNode?)u.Url))]);
        return doc;
    }

    internal static string When(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    internal static string Span(TimeSpan span) =>
        span.TotalDays >= 1 ? $"{(int)span.TotalDays}d{span.Hours}h" : span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes}m" : $"{Math.Max(0, (int)span.TotalMinutes)}m";

    internal async Task<EnvironmentRecord> OpenRecordAsync(string? repoOption, string? stateOption, string name, CancellationToken cancellationToken)
    {
        var repoSession = RepoSession.Open(env, repoOption);
        var (store, _) = repoSession.OpenState(stateOption);
        await using (store)
        {
            var found = await new EnvironmentStore(store, repoSession.Model.Project, TimeProvider.System).GetAsync(name, cancellationToken)
                ?? throw new Core.Diagnostics.UserInputException($"there is no environment '{name}'");
            return found.Record;
        }
    }

    /// <summary>The trees of <c>--source VERSION=DIR</c> and <c>--config DIR</c>, as absolute paths (<c>config=DIR</c> for the config tree).</summary>
    internal List<string> SourceTrees(string[] sources, string? config)
    {
        var trees = new List<string>();
        foreach (var source in sources)
        {
            if (source.Split('=', 2) is not [{ Length: > 0 } version, { Length: > 0 } dir] || version == "config")
            {
                throw new Core.Diagnostics.UserInputException($"--source '{source}' must be VERSION=DIR (e.g. php-1.44=~/src/mediawiki)");
            }

            trees.Add($"{version}={env.Resolve(dir)}");
        }

        if (config is not null)
        {
            trees.Add($"config={env.Resolve(config)}");
        }

        return trees;
    }

    /// <summary>
    /// Rebuilds the image of every environment among <paramref name="records"/> that runs a developer's trees, from the
    /// same trees, and records the new image (an unchanged build changes nothing). Someone else's needs <paramref name="force"/>.
    /// </summary>
    internal async Task RebuildAsync(DeploySession session, IEnumerable<EnvironmentRecord> records, string actor, bool force, CancellationToken ct)
    {
        var service = session.Environments();
        foreach (var record in records.Where(r => r.Sources.Count > 0 && r.Creating is null && r.Sleeping is null))
        {
            if (await session.Images().BuildForEnvironmentAsync(record.Name, record.Sources, record.Image, ct) is { } image)
            {
                await service.Records.ChangeAsync(record.Name, actor, "rebuild from its sources", force || record.Owner == actor, r => r with { Image = image }, ct);
            }
        }
    }

    /// <summary>Says, loudly, which of production's backends an environment shares (only a class that names them allows it).</summary>
    internal void WarnOfProduction(EnvironmentBackends? backends)
    {
        foreach (var shared in backends?.FromProduction ?? [])
        {
            error.WriteLine($"capstan: WARNING: environment {backends!.Environment} uses production's {shared.Production.Name} ({Backend.KindName(shared.Production.Kind)}) read-only, as its class allows: it is not isolated from it");
        }
    }

    internal void Print(bool json, EnvironmentRecord record, string text, IReadOnlyList<(string Group, string Url)> urls) =>
        console.Profile.Out.Writer.WriteLine(json ? KubeSerializer.ToJson(WithUrls(JsonNode.Parse(record.ToJson())!.AsObject(), urls)) : text);

    /// <summary>Progress as one line per event on stderr (stdout stays the result).</summary>
    internal sealed class ProgressLines(TextWriter writer) : IDeployObserver
    {
        private readonly Lock _lock = new();

        public void OnEvent(DeployEvent e)
        {
            lock (_lock)
            {
                writer.WriteLine(e.Release is null ? e.Message : $"{e.Release}: {e.Message}");
            }
        }
    }
}
