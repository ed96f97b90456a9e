using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.LocalCluster;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary>
/// <c>capstan local images [add|remove REF…]</c>: the images the nodes of the local clusters can pull (besides those
/// Capstan builds into the farm's OCI layout). A new cluster starts with every image the repo names; any other
/// reference fails to pull, as on a real cluster whose registry lacks it.
/// </summary>
internal sealed class LocalImagesCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var command = new Command("images", "List the images the local clusters' nodes can pull (a new cluster starts with every image the repo names; others fail with ErrImagePull)")
        {
            Build("add", "Let the local clusters' nodes pull these images (as if pushed to their registry)", add: true),
            Build("remove", "Make these images fail to pull on the local clusters' nodes", add: false),
        };
        var (repo, dc, output) = Options();
        command.Options.Add(repo);
        command.Options.Add(dc);
        command.Options.Add(output);
        command.SetAction(parse =>
        {
            var lists = Lists(parse.GetValue(repo), parse.GetValue(dc));
            Print(lists.Select(l => (l.Datacenter, ImageCatalog.Read(l.File) ?? l.Seed())), parse.GetValue(output) == "json");
            return ExitCodes.Success;
        });
        return command;
    }

    private static (Option<string?> Repo, Option<string?> Dc, Option<string> Output) Options() =>
        (CommonOptions.Repo(),
         new Option<string?>("--dc") { Description = "Only this datacenter's local cluster (default: every local one)", HelpName = "DC" },
         CommonOptions.Output("text", "json"));

    private Command Build(string name, string description, bool add)
    {
        var (repo, dc, output) = Options();
        var references = new Argument<string[]>("REF") { Description = "Image references, such as registry.example/mediawiki:2026-12-01", Arity = ArgumentArity.OneOrMore };
        var command = new Command(name, description) { references, repo, dc, output };
        command.SetAction(parse =>
        {
            var given = parse.GetValue(references)!;
            if (given.FirstOrDefault(r => r.Length == 0 || r.Any(char.IsWhiteSpace)) is { } bad)
            {
                throw new UserInputException($"'{bad}' is not an image reference (HOST/NAME:TAG or HOST/NAME@sha256:…)");
            }

            var changed = new List<(string Datacenter, IReadOnlyList<string> Images)>();
            foreach (var list in Lists(parse.GetValue(repo), parse.GetValue(dc)))
            {
                var current = ImageCatalog.Read(list.File) ?? list.Seed();
                var next = add ? current.Union(given, StringComparer.Ordinal).ToList() : current.Except(given, StringComparer.Ordinal).ToList();
                Core.Security.PrivateFiles.Directory(Path.GetDirectoryName(list.File)!);
                ImageCatalog.Write(list.File, next);
                changed.Add((list.Datacenter, next));
                error.WriteLine($"capstan: local://{list.Datacenter}: {(add ? "added" : "removed")} {given.Length} image{(given.Length == 1 ? string.Empty : "s")}");
            }

            Print(changed, parse.GetValue(output) == "json");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// Adds images pushed to a registry to the lists of the repo's local clusters that have one, so their nodes can
    /// pull them (a cluster made later seeds its list from the repo, which then names them).
    /// </summary>
    public static void Publish(FarmModel model, IReadOnlyList<string> images, TextWriter error)
    {
        foreach (var cluster in model.Datacenters.Select(d => LocalClusterHost.ClusterName(d.Cluster)).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var file = Path.Combine(LocalClusterHost.DirectoryFor(model.RepoRoot, cluster), ImageCatalog.FileName);
            if (ImageCatalog.Read(file) is { } current)
            {
                ImageCatalog.Write(file, current.Union(images, StringComparer.Ordinal));
                error.WriteLine($"capstan: local://{cluster} can pull {string.Join(", ", images)}");
            }
        }
    }

    /// <summary>The image list of each local datacenter asked for: its file, and the repo's images for a cluster that has none yet.</summary>
    private List<(string Datacenter, string File, Func<IReadOnlyList<string>> Seed)> Lists(string? repoOption, string? only)
    {
        var session = RepoSession.Open(env, repoOption);
        var model = session.Model;
        if (only is not null)
        {
            LocalCommand.CheckDatacenter(model, only);
        }

        var lists = new List<(string, string, Func<IReadOnlyList<string>>)>();
        foreach (var datacenter in model.Datacenters.Where(d => only is null || d.Name == only))
        {
            if (LocalClusterHost.ClusterName(datacenter.Cluster) is not { } cluster)
            {
                if (only is not null)
                {
                    throw new UserInputException($"datacenter {only} runs on {datacenter.Cluster}, not a local cluster: its images are its registry's");
                }

                continue;
            }

            var directory = LocalClusterHost.DirectoryFor(session.Files.Root, cluster);
            lists.Add((datacenter.Name, Path.Combine(directory, ImageCatalog.FileName), () => RepoImages.Named(model)));
        }

        // Datacenters that share a local cluster share its list.
        return lists.Count > 0 ? [.. lists.DistinctBy(l => l.Item2)] : throw new UserInputException("this repo has no local:// datacenter");
    }

    private void Print(IEnumerable<(string Datacenter, IReadOnlyList<string> Images)> lists, bool json)
    {
        var writer = console.Profile.Out.Writer;
        if (json)
        {
            writer.WriteLine(new JsonObject(lists.Select(l => KeyValuePair.Create(l.Datacenter, (JsonNode?)new JsonArray([.. l.Images.Select(i => (JsonNode)JsonValue.Create(i))])))).ToJsonString());
            return;
        }

        foreach (var (datacenter, images) in lists)
        {
            foreach (var image in images)
            {
                writer.WriteLine($"{datacenter}\t{image}");
            }
        }
    }
}
