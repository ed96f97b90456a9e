using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image build | plan | push | pull | prep | inspect | compose | pull-cost</c>: MediaWiki code as an OCI image.</summary>
internal sealed class ImageCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build() => new("image", "Build, move, inspect and unpack the MediaWiki image (OCI)")
    {
        BuildCommand(),
        PlanCommand(),
        CopyCommand("push", "Copy an image to a registry (or another layout); blobs the target has are skipped", "SOURCE", "TARGET"),
        CopyCommand("pull", "Copy an image from a registry into a layout, checking every blob against its digest", "SOURCE", "TARGET"),
        PrepCommand(),
        InspectCommand(),
        ComposeCommand(),
        PullCostCommand(),
    };

    private Command CopyCommand(string name, string description, string from, string to)
    {
        var repo = CommonOptions.Repo();
        var source = new Argument<string>(from) { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG|@DIGEST]" };
        var target = new Argument<string>(to) { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG] (default tag: the source's)" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command(name, description) { repo, source, target, output };
        command.SetAction(async (parse, ct) =>
        {
            var from = ImageReference.Parse(parse.GetValue(source)!, env.Resolve("."));
            var to = ImageReference.Parse(parse.GetValue(target)!, env.Resolve("."));
            var result = await CopyAsync(from, to, parse.GetValue(output) == "json", ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["source"] = from.ToString(),
                    ["target"] = to.ToString(),
                    ["digest"] = result.Digest,
                    ["blobsCopied"] = result.Blobs,
                    ["blobsSkipped"] = result.BlobsSkipped,
                    ["bytesCopied"] = result.BytesCopied,
                    ["bytesSkipped"] = result.BytesSkipped,
                    ["bytesSent"] = result.BytesSent,
                }.ToJsonString());
            }
            else
            {
                writer.WriteLine($"{to.Store}:{to.Tag ?? from.Tag ?? "latest"} {result.Digest}: {result.Blobs} blobs copied ({Size(result.BytesCopied)}), {result.BlobsSkipped} already there ({Size(result.BytesSkipped)})" +
                    (result.BytesSent is { } sent ? $"; {Size(sent)} sent" : string.Empty));
            }

            return ExitCodes.Success;
        });
        return command;
    }

    internal async Task<CopyResult> CopyAsync(ImageReference from, ImageReference to, bool quiet, CancellationToken ct)
    {
        await using var source = await Stores.OpenAsync(from, env, ct);

        // Within one registry, blobs are mounted from the source repository instead of uploaded.
        await using var target = await Stores.OpenAsync(to, env, ct, mountFrom: !from.IsLayout && from.Registry == to.Registry ? from.Repository : null);

        var copier = new ImageCopier(source.Store, target.Store, quiet || !env.Interactive ? null : new TransferProgress(error));
        return await copier.CopyAsync(from.Reference, to.Tag ?? from.Tag ?? (from.Digest is null ? "latest" : null), ct);
    }

    private Command PrepCommand()
    {
        var repo = CommonOptions.Repo();
        var image = new Argument<string>("IMAGE") { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG|@DIGEST]" };
        var into = new Option<string>("--into") { Description = "The staging directory to unpack into (created when missing)", Required = true, HelpName = "DIR" };
        var flavour = new Option<string?>("--flavour") { Description = "Which flavour of a multi-flavour image (default: the first)", HelpName = "NAME" };
        var cache = new Option<string?>("--cache") { Description = "The local layout pulled images are kept in (default: the repo's .capstan/images)", HelpName = "DIR" };
        var force = new Option<bool>("--force") { Description = "Overwrite files in the directory that no earlier prep wrote (refused by default, listing them)" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("prep", "Pull an image and unpack it into a staging directory (only what changed is written)") { repo, image, into, flavour, cache, force, output };
        command.SetAction(async (parse, ct) =>
        {
            var reference = ImageReference.Parse(parse.GetValue(image)!, env.Resolve("."));
            OciLayout layout;
            string local;
            if (reference.IsLayout)
            {
                layout = new OciLayout(reference.LayoutPath!);
                local = reference.Reference;
            }
            else
            {
                var cacheDir = parse.GetValue(cache) is { } c ? env.Resolve(c) : Path.Combine(env.Resolve(parse.GetValue(repo) ?? env.Get("CAPSTAN_REPO") ?? "."), ".capstan", "images");
                layout = new OciLayout(cacheDir);
                var copy = await CopyAsync(reference, ImageReference.Parse("oci-layout://" + cacheDir, "/") with { Tag = null, Digest = null }, parse.GetValue(output) == "json", ct);
                local = copy.Digest;
            }

            var result = await new ImagePrep(layout).PrepAsync(local, env.Resolve(parse.GetValue(into)!), parse.GetValue(flavour), ct, overwriteForeign: parse.GetValue(force));
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["image"] = result.Digest,
                    ["entries"] = result.Entries,
                    ["written"] = result.Written,
                    ["unchanged"] = result.Unchanged,
                    ["removed"] = result.Removed,
                    ["bytesWritten"] = result.BytesWritten,
                }.ToJsonString());
            }
            else
            {
                writer.WriteLine($"prepped {result.Digest} into {env.Resolve(parse.GetValue(into)!)}: {result.Entries} entries; {result.Written} written ({Size(result.BytesWritten)}), {result.Unchanged} unchanged, {result.Removed} removed");
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildCommand()
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
            var input = Input(env, session, parse.GetValue(sources) ?? [], parse.GetValue(config), parse.GetValue(epoch));
            var layout = new OciLayout(LayoutPath(env, session, parse.GetValue(to)));
            var json = parse.GetValue(output) == "json";
            var builder = new ImageBuilder(layout, new Progress(error, json)) { Verify = parse.GetValue(verify) };
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
                table.Add(layer.Name, layer.Files.ToString(CultureInfo.InvariantCulture), layer.Shared.ToString(CultureInfo.InvariantCulture), Size(layer.UncompressedSize), Size(layer.Blob.Size), layer.Blob.Digest[..19], layer.Reused ? "yes" : "no");
            }

            writer.Write(table.ToString());
            var all = result.Flavours.SelectMany(f => f.Layers).DistinctBy(l => l.Blob.Digest).ToList();
            writer.WriteLine($"built oci-layout://{layout.Path}:{result.Tag} {result.Top.Digest} in {result.Duration.TotalSeconds:0.00} s: " +
                $"{all.Count(l => !l.Reused)} layers compressed ({Size(all.Where(l => !l.Reused).Sum(l => l.Blob.Size))}), {all.Count(l => l.Reused)} reused ({Size(all.Where(l => l.Reused).Sum(l => l.Blob.Size))}); report: {reportPath}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command ComposeCommand()
    {
        var parts = new Argument<string[]>("IMAGE") { Description = "Images to combine, in order, all in one layout: oci-layout://PATH:TAG (single-version images, and the config tree's)", Arity = ArgumentArity.OneOrMore };
        var tag = new Option<string>("--tag", "-t") { Description = "The tag of the combined image, in the same layout", Required = true, HelpName = "TAG" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("compose", "Combine single-version images into the multi-version image by reference: no layer is rebuilt or recompressed") { parts, tag, output };
        command.SetAction(async (parse, ct) =>
        {
            var references = parse.GetValue(parts)!.Select(p => ImageReference.Parse(p, env.Resolve("."))).ToList();
            if (references.Count < 2)
            {
                throw new UserInputException("compose needs at least two images (each version's, and the config tree's if it has its own)");
            }

            if (references.FirstOrDefault(r => !r.IsLayout || r.Digest is not null) is { } notLayout)
            {
                throw new UserInputException($"{notLayout} is not an oci-layout://PATH:TAG: compose works on one layout ('capstan image pull' puts an image into one)");
            }

            if (references.Select(r => r.LayoutPath).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                throw new UserInputException($"the images are in different layouts ({string.Join(", ", references.Select(r => r.LayoutPath).Distinct(StringComparer.Ordinal))}); pull them into one first");
            }

            var layout = new OciLayout(references[0].LayoutPath!);
            ImageReference.Parse($"oci-layout://{layout.Path}:{parse.GetValue(tag)}", env.Resolve("."));
            var result = await new ImageComposer(layout).ComposeAsync([.. references.Select(r => r.Reference)], parse.GetValue(tag)!, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["reference"] = $"oci-layout://{layout.Path}:{result.Tag}",
                    ["digest"] = result.Manifest.Digest,
                    ["versions"] = new System.Text.Json.Nodes.JsonArray([.. result.Versions.Select(v => (System.Text.Json.Nodes.JsonNode)v)]),
                    ["parts"] = new System.Text.Json.Nodes.JsonArray([.. result.Parts.Select(p => (System.Text.Json.Nodes.JsonNode)p)]),
                    ["layers"] = result.Layers,
                }.ToJsonString());
                return ExitCodes.Success;
            }

            writer.WriteLine($"composed oci-layout://{layout.Path}:{result.Tag} {result.Manifest.Digest}: {string.Join(", ", result.Versions)} in {result.Layers} layers, none rebuilt");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command PullCostCommand()
    {
        var repo = CommonOptions.Repo();
        var oldImage = new Argument<string>("OLD") { Description = "The image the nodes run now: oci-layout://PATH[:TAG] or HOST/NAME[:TAG|@DIGEST]" };
        var newImage = new Argument<string>("NEW") { Description = "The image to roll out" };
        var registry = new Option<string>("--registry-bandwidth") { Description = "What the registry can send in all", DefaultValueFactory = _ => "10Gbit/s", HelpName = "RATE" };
        var node = new Option<string>("--node-bandwidth") { Description = "What one node can pull", DefaultValueFactory = _ => "10Gbit/s", HelpName = "RATE" };
        var output = CommonOptions.Output("table", "json");
        var command = new Command("pull-cost", "What rolling NEW out over OLD costs each datacenter: nodes running MediaWiki, bytes each lacks, registry egress, and the time from the registry against peer-to-peer")
        {
            repo, oldImage, newImage, registry, node, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var registryRate = LocalCommand.Rate(parse.GetValue(registry)!, "--registry-bandwidth");
            var nodeRate = LocalCommand.Rate(parse.GetValue(node)!, "--node-bandwidth");
            async Task<IReadOnlyList<(string Digest, long Size)>> LayersAsync(string text)
            {
                var reference = ImageReference.Parse(text, env.Resolve("."));
                await using var store = await Stores.OpenAsync(reference, env, ct);
                return await PullCost.LayersAsync(store.Store, reference.Reference, ct);
            }

            var missing = PullCost.Missing(await LayersAsync(parse.GetValue(oldImage)!), await LayersAsync(parse.GetValue(newImage)!));
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), null, null, new Core.Rendering.RenderSelection(), ct, readState: false);
            var estimates = new List<PullCostEstimate>();
            foreach (var dc in session.Repo.Model.DatacenterNames)
            {
                // The nodes that will run the new image: those running MediaWiki now (and so holding the old one).
                var nodes = new HashSet<string>(StringComparer.Ordinal);
                foreach (var group in session.Repo.Model.Groups)
                {
                    foreach (var pod in (await session.Clusters[dc].ListAsync("v1", "Pod", group.Namespace, "app=mediawiki", ct)).Items)
                    {
                        if (pod["spec"]?["nodeName"]?.GetValue<string>() is { } name)
                        {
                            nodes.Add(name);
                        }
                    }
                }

                estimates.Add(PullCost.Estimate(dc, nodes.Count, missing, registryRate, nodeRate));
            }

            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new System.Text.Json.Nodes.JsonArray([.. estimates.Select(e => (System.Text.Json.Nodes.JsonNode)PullCostView.Json(e))]).ToJsonString());
                return ExitCodes.Success;
            }

            var table = new PlainTable(["DC", .. PullCostView.Headings]);
            foreach (var e in estimates)
            {
                table.Add([e.Datacenter, .. PullCostView.Cells(e)]);
            }

            writer.Write(table.ToString());
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
            $"{all.Count(l => !l.Reused)} layers compressed ({Size(all.Where(l => !l.Reused).Sum(l => l.Blob.Size))}), {all.Count(l => l.Reused)} reused");
        writer.Flush();
    }

    private Command PlanCommand()
    {
        var repo = CommonOptions.Repo();
        var sources = new Option<string[]>("--source") { Description = "A code tree as VERSION=DIR (repeatable; default: image.sources in capstan.yaml)", HelpName = "VERSION=DIR" };
        var config = new Option<string?>("--config") { Description = "The config tree (default: image.config)", HelpName = "DIR" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("plan", "Print the layering plan: the rules and, for the given trees, what each layer would hold") { repo, sources, config, output };
        command.SetAction((parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var spec = session.Model.Image;
            var writer = console.Profile.Out.Writer;
            var input = Input(env, session, parse.GetValue(sources) ?? [], parse.GetValue(config), 0, requireSources: false);
            var planned = input.Sources.Count > 0 || input.ConfigDirectory is not null ? LayerPlanner.Plan(input) : [];
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["root"] = spec.Root,
                    ["rules"] = new JsonArray([.. spec.Layers.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["paths"] = new JsonArray([.. l.Paths.Select(p => (JsonNode?)p)]) })]),
                    ["layers"] = new JsonArray([.. planned.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["files"] = l.Files, ["shared"] = l.Shared, ["bytes"] = l.ContentBytes })]),
                }.ToJsonString());
                return Task.FromResult(ExitCodes.Success);
            }

            writer.WriteLine($"image root: /{spec.Root}; per version, in this order (a path goes to the first rule that matches; '*' takes the rest), then the config tree:");
            foreach (var rule in spec.Layers)
            {
                writer.WriteLine($"  {rule.Name,-16} {string.Join(" ", rule.Paths)}");
            }

            if (planned.Count > 0)
            {
                writer.WriteLine();
                var table = new PlainTable("LAYER", "FILES", "SHARED", "SIZE");
                foreach (var layer in planned)
                {
                    table.Add(layer.Name, layer.Files.ToString(CultureInfo.InvariantCulture), layer.Shared.ToString(CultureInfo.InvariantCulture), Size(layer.ContentBytes));
                }

                writer.Write(table.ToString());
            }

            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    private Command InspectCommand()
    {
        var repo = CommonOptions.Repo();
        var image = new Argument<string>("IMAGE") { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG]" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("inspect", "Show an image's manifest (or index), layers and labels") { repo, image, output };
        command.SetAction(async (parse, ct) =>
        {
            var reference = ImageReference.Parse(parse.GetValue(image)!, env.Resolve("."));
            await using var store = await Stores.OpenAsync(reference, env, ct);
            var inspected = await ImageInspector.InspectAsync(store.Store, reference.Reference, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(inspected.ToJsonString());
                return ExitCodes.Success;
            }

            writer.WriteLine($"{reference}  {inspected["digest"]}  {inspected["mediaType"]}");
            foreach (var manifest in inspected["manifests"]!.AsArray())
            {
                writer.WriteLine($"manifest {manifest!["digest"]}{(manifest["flavour"] is { } f ? $" (flavour {f})" : string.Empty)}");
                foreach (var label in manifest["labels"]!.AsObject())
                {
                    writer.WriteLine($"  label {label.Key}={label.Value}");
                }

                foreach (var layer in manifest["layers"]!.AsArray())
                {
                    writer.WriteLine($"  layer {layer!["digest"]!.GetValue<string>()[..19]}  {Size(layer["size"]!.GetValue<long>()),10}  {layer["name"]}");
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }

    internal static BuildInput Input(CliEnvironment env, RepoSession session, string[] sourceOptions, string? configOption, long? epochOption, bool requireSources = true)
    {
        var spec = session.Model.Image;
        var root = session.Model.RepoRoot;
        var sources = sourceOptions.Length > 0
            ? sourceOptions.Select(s => s.Split('=', 2) is [var v, var d] && v.Length > 0 && d.Length > 0
                ? new ImageSource(v, env.Resolve(d))
                : throw new UserInputException($"--source '{s}' must be VERSION=DIR (e.g. php-1.42=/srv/php-1.42)")).ToList()
            : spec.Sources.Select(s => s with { Path = Path.GetFullPath(Path.Combine(root, s.Path)) }).ToList();
        foreach (var source in sources.Where(s => !Directory.Exists(s.Path)))
        {
            throw new UserInputException($"code tree '{source.Path}' ({source.Version}) does not exist");
        }

        if (requireSources && sources.Count == 0)
        {
            throw new UserInputException("no code tree to build: pass --source VERSION=DIR or set image.sources in capstan.yaml");
        }

        var configDir = configOption is not null ? env.Resolve(configOption) : spec.Config is { } c ? Path.GetFullPath(Path.Combine(root, c)) : null;
        if (configDir is not null && !Directory.Exists(configDir))
        {
            throw new UserInputException($"config tree '{configDir}' does not exist");
        }

        var epochText = env.Get("SOURCE_DATE_EPOCH");
        var epoch = epochOption ?? (long.TryParse(epochText, NumberStyles.None, CultureInfo.InvariantCulture, out var fromEnv) ? fromEnv : spec.Epoch ?? 0);
        return new BuildInput(spec, sources, configDir, epoch, SourceCommit(configDir ?? sources.FirstOrDefault()?.Path));
    }

    internal static string LayoutPath(CliEnvironment env, RepoSession session, string? to)
    {
        if (to is not null)
        {
            var reference = ImageReference.Parse(to, env.Resolve("."));
            return reference.IsLayout ? reference.LayoutPath! : throw new UserInputException("--to must be an oci-layout://PATH (push to a registry with 'capstan image push')");
        }

        return session.Model.RegistryLayout ?? Path.Combine(session.Model.RepoRoot, ".capstan", "build");
    }

    /// <summary>The commit a tree is checked out at, read from its .git (no git process), or null.</summary>
    private static string? SourceCommit(string? directory)
    {
        for (var dir = directory is null ? null : new DirectoryInfo(directory); dir is not null; dir = dir.Parent)
        {
            var head = Path.Combine(dir.FullName, ".git", "HEAD");
            if (!File.Exists(head))
            {
                continue;
            }

            var text = File.ReadAllText(head).Trim();
            if (!text.StartsWith("ref: ", StringComparison.Ordinal))
            {
                return text;
            }

            var refPath = Path.Combine(dir.FullName, ".git", text[5..]);
            if (File.Exists(refPath))
            {
                return File.ReadAllText(refPath).Trim();
            }

            var packed = Path.Combine(dir.FullName, ".git", "packed-refs");
            return File.Exists(packed)
                ? File.ReadLines(packed).Select(l => l.Split(' ')).FirstOrDefault(p => p.Length == 2 && p[1] == text[5..])?[0]
                : null;
        }

        return null;
    }

    internal static string Size(long bytes) => bytes switch
    {
        >= 1 << 30 => (bytes / (double)(1 << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1 << 20 => (bytes / (double)(1 << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1 << 10 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };

    private sealed class TransferProgress(TextWriter error) : IProgress<(string What, long Done, long Total)>
    {
        private readonly Lock _lock = new();
        private string? _last;

        public void Report((string What, long Done, long Total) value)
        {
            lock (_lock)
            {
                var percent = value.Total > 0 ? (int)(value.Done * 100 / value.Total) : 100;
                var line = $"{value.What}: {Size(value.Done)} / {Size(value.Total)} ({percent}%)";
                if (line != _last)
                {
                    error.Write("\r" + line.PadRight(72));
                    if (value.Done >= value.Total)
                    {
                        error.WriteLine();
                    }

                    _last = line;
                }
            }
        }
    }

    private sealed class Progress(TextWriter error, bool quiet) : IProgress<string>
    {
        public void Report(string value)
        {
            if (!quiet)
            {
                error.WriteLine($"capstan: {value}");
            }
        }
    }
}
