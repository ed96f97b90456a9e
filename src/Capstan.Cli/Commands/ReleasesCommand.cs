using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan releases</c>: a table of every release with its stage, needs, replicas and image.</summary>
internal sealed class ReleasesCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    private readonly Option<string?> _repo = CommonOptions.Repo();
    private readonly Option<string?> _dc = CommonOptions.Datacenter();
    private readonly Option<string?> _namespace = CommonOptions.Namespace();
    private readonly Option<string?> _subset = CommonOptions.Subset();
    private readonly Option<string?> _environment = CommonOptions.Environment();
    private readonly Option<string> _output = CommonOptions.Output("table", "json");

    public Command Build()
    {
        var command = new Command("releases", "List the farm's releases: datacenter, namespace, release, kind, stage, needs, replicas, image")
        {
            _repo, _dc, _namespace, _subset, _environment, _output,
        };
        command.SetAction(Execute);
        return command;
    }

    private int Execute(ParseResult parse)
    {
        var session = RepoSession.Open(env, parse.GetValue(_repo));
        var (subset, testEnvironment) = CommonOptions.Scope(parse.GetValue(_subset), parse.GetValue(_environment), () => session.Model, error);
        if (testEnvironment is not null)
        {
            throw new Core.Diagnostics.UserInputException($"'{testEnvironment}' is no release subset (allowed: {string.Join(", ", session.Model.Subsets.Select(s => s.Name))}); 'capstan env show {testEnvironment}' shows a test environment");
        }

        var selection = new RenderSelection(parse.GetValue(_dc), parse.GetValue(_namespace), null, subset);
        session.Renderer.CheckSelection(selection);
        var rows = session.Renderer.Select(selection).Select(t => Row(session, t.Dc, t.Group, t.Release)).ToList();
        if (parse.GetValue(_output) == "json")
        {
            var array = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
            {
                ["datacenter"] = r.Dc,
                ["namespace"] = r.Ns,
                ["release"] = r.Release,
                ["kind"] = r.Kind,
                ["stage"] = r.Stage,
                ["needs"] = new JsonArray([.. r.Needs.Select(n => (JsonNode)JsonValue.Create(n))]),
                ["replicas"] = r.Replicas is { } n ? JsonValue.Create(n) : null,
                ["image"] = r.Image,
            })]);
            console.Profile.Out.Writer.WriteLine(KubeSerializer.ToJson(array));
            return ExitCodes.Success;
        }

        var table = new PlainTable("DC", "NAMESPACE", "RELEASE", "KIND", "STAGE", "NEEDS", "REPLICAS", "IMAGE");
        foreach (var r in rows)
        {
            table.Add(
                r.Dc, r.Ns, r.Release, r.Kind, r.Stage,
                r.Needs.Count == 0 ? "-" : string.Join(",", r.Needs),
                r.Replicas?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.Image ?? "-");
        }

        console.Profile.Out.Writer.Write(table.ToString());
        return ExitCodes.Success;
    }

    private sealed record ReleaseRow(string Dc, string Ns, string Release, string Kind, string Stage, IReadOnlyList<string> Needs, int? Replicas, string? Image);

    private static ReleaseRow Row(RepoSession session, string dc, ServerGroup group, ReleaseSpec release)
    {
        int? replicas = release.Kind != ReleaseKind.MediaWiki || group.Traits.Serving == ServingKind.Cli ? null
            : release.Canary is { } canary ? canary.ReplicasFor(group.Releases.First(r => r.Name == canary.Of).Replicas?.For(dc) ?? 0)
            : release.Replicas?.For(dc);
        var values = session.Renderer.ResolveValues(dc, group, release);
        var image = release.Kind switch
        {
            ReleaseKind.MediaWiki => values.Images.MediaWiki,
            ReleaseKind.StatsdExporter => values.Images.StatsdExporter,
            _ => null,
        };
        var needs = release.Needs.Select(n => n.Namespace == group.Namespace ? n.Release : n.ToString()).ToList();
        return new ReleaseRow(dc, group.Namespace, release.Name, ObjectLabels.KindWord(release.Kind), release.Stage.ToString().ToLowerInvariant(), needs, replicas, image);
    }
}
