using System.CommandLine;
using System.Globalization;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image build</c>: build the image from the code and config trees, once or on every change.</summary>
internal sealed class ImageBuildCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var sources = new Option<string[]>("--source") { Description = "A code tree as VERSION=DIR (repeatable; default: image.sources in capstan.yaml)", HelpName = "VERSION=DIR", AllowMultipleArgumentsPerToken = false };
        var config = new Option<string?>("--config") { Description = "The config tree (default: image.config)", HelpName = "DIR" };
        var tag = new Option<string>("--tag", "-t") { Description = "The tag to give the image", DefaultValueFactory = _ => "latest", HelpName = "TAG" };
        var to = new Option<string?>("--to") { Description = "The OCI layout to build into (default: the repo's registry when it is an oci-layout://, else .capstan/build)", HelpName = "oci-layout://PATH" };
        var epoch = new Option<long?>("--epoch") { Description = "The timestamp of every file, in seconds (default: $SOURCE_DATE_EPOCH, else image.epoch, else 0)", HelpName = "SECONDS" };
        var report = new Option<string?>("--report") { Description = "Where to write the build report (default: report.json in the layout)", HelpName = "FILE" };
        var verify = new Option<bool>("--verify") { Description = "Read every file, even of layers whose files' sizes and modification times are unchanged since an earlier build" };
        var watch = new Option<bool>("--watch") { Description = "Keep running: rebuild whenever a file of the trees changes, reading only what changed (inotify), until interrupted" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("build", "Build the image from the code trees and the config tree (deterministic: the same input gives the same digest)")
        {
            repo, sources, config, tag, to, epoch, report, verify, watch, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var input = ImageCommand.Input(env, session, parse.GetValue(sources) ?? [], parse.GetValue(config), parse.GetValue(epoch));
            var layout = new OciLayout(ImageCommand.LayoutPath(env, session, parse.GetValue(to)));
            var json = parse.GetValue(output) == "json";
            var builder = new ImageBuilder(layout, new ImageCommand.Progress(error, json)) { Verify = parse.GetValue(verify) };
            using var watcher = parse.GetValue(watch) ? new ImageWatcher(input) : null;
            var result = await builder.BuildAsync(input, parse.GetValue(tag)!, watcher, ct);
            if (watcher is not null)
            {
                Print(await result.WriteReportAsync(layout, parse.GetValue(report) is { } first ? env.Resolve(first) : Path.Combine(layout.Path, "report.json"), ct), result, layout, json);
                return await WatchAsync(builder, input, layout, parse.GetValue(tag)!, watcher, json, ct);
            }

            var reportPath = parse.GetValue(report) is { } r ? env.Resolve(r) : Path.Combine(layout.Path, "report.json");
            var reportNode = await result.WriteReportAsync(layout, reportPath, ct);
            var writer = console.Profile.Out.Writer;
            if (json)
            {
                writer.WriteLine(reportNode.ToJsonString());
                return ExitCodes.Success;
            }

            var table = new PlainTable("LAYER", "FILES", "SHARED", "SIZE", "COMPRESSED", "DIGEST", "REUSED");
            foreach (var layer in result.Flavours.SelectMany(f => f.Layers).DistinctBy(l => l.Blob.Digest))
            {
                table.Add(layer.Name, layer.Files.ToString(CultureInfo.InvariantCulture), layer.Shared.ToString(CultureInfo.InvariantCulture), ImageCommand.Size(layer.UncompressedSize), ImageCommand.Size(layer.Blob.Size), layer.Blob.Digest[..19], layer.Reused ? "yes" : "no");
            }

            writer.Write(table.ToString());
            var all = result.Flavours.SelectMany(f => f.Layers).DistinctBy(l => l.Blob.Digest).ToList();
            writer.WriteLine($"built oci-layout://{layout.Path}:{result.Tag} {result.Top.Digest} in {result.Duration.TotalSeconds:0.00} s: " +
                $"{all.Count(l => !l.Reused)} layers compressed ({ImageCommand.Size(all.Where(l => !l.Reused).Sum(l => l.Blob.Size))}), {all.Count(l => l.Reused)} reused ({ImageCommand.Size(all.Where(l => l.Reused).Sum(l => l.Blob.Size))}); report: {reportPath}");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Rebuilds after every settled burst of changes until interrupted; a build that fails (a file vanished mid-build) is reported and the next change tries again.</summary>
    private async Task<int> WatchAsync(ImageBuilder builder, BuildInput input, OciLayout layout, string tag, ImageWatcher watcher, bool json, CancellationToken ct)
    {
        error.WriteLine($"capstan: watching {string.Join(", ", input.Sources.Select(s => s.Path))}{(input.ConfigDirectory is { } c ? $", {c}" : string.Empty)}; rebuilding {tag} on every change until interrupted (Ctrl-C)");
        try
        {
            while (true)
            {
                // Wait for a change, then for the burst to settle (an editor or a checkout writes several files).
                while (watcher.Pending == 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
                }

                for (var seen = -1; seen != watcher.Pending;)
                {
                    seen = watcher.Pending;
                    await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
                }

                try
                {
                    var result = await builder.BuildAsync(input, tag, watcher, ct);
                    Print(await result.WriteReportAsync(layout, Path.Combine(layout.Path, "report.json"), ct), result, layout, json);
                }
                catch (Exception ex) when (ex is ImageException or IOException)
                {
                    error.WriteLine($"capstan: error: {ex.Message}; the next change builds again");
                }
            }
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Success;
        }
    }

    private void Print(System.Text.Json.Nodes.JsonNode reportNode, BuildResult result, OciLayout layout, bool json)
    {
        var writer = console.Profile.Out.Writer;
        if (json)
        {
            writer.WriteLine(reportNode.ToJsonString());
            return;
        }

        var all = result.Flavours.SelectMany(f => f.Layers).DistinctBy(l => l.Blob.Digest).ToList();
        writer.WriteLine($"built oci-layout://{layout.Path}:{result.Tag} {result.Top.Digest} in {result.Duration.TotalSeconds:0.00} s: " +
            $"{all.Count(l => !l.Reused)} layers compressed ({ImageCommand.Size(all.Where(l => !l.Reused).Sum(l => l.Blob.Size))}), {all.Count(l => l.Reused)} reused");
        writer.Flush();
    }
}
