using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.Yaml;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan render</c>: print or write the Kubernetes objects of the farm or a selection of it.</summary>
internal sealed class RenderCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    /// <summary>Written into an --out directory so that a later render may replace it wholesale.</summary>
    public const string OutMarker = ".capstan-render";

    private readonly Option<string?> _repo = CommonOptions.Repo();
    private readonly Option<string?> _dc = CommonOptions.Datacenter();
    private readonly Option<string?> _namespace = CommonOptions.Namespace();
    private readonly Option<string?> _release = CommonOptions.Release();
    private readonly Option<string?> _environment = CommonOptions.Environment();
    private readonly Option<string?> _subset = CommonOptions.Subset();
    private readonly Option<string?> _stateFile = CommonOptions.StateFile();
    private readonly Option<string?> _state = CommonOptions.State();
    private readonly Option<string> _output = CommonOptions.Output("yaml", "json");
    private readonly Option<string?> _out = new("--out") { Description = "Write one file per object under DIR/<dc>/<namespace>/<release>/ instead of printing", HelpName = "DIR" };
    private readonly Option<bool> _revealSecrets = new("--reveal-secrets") { Description = "Print Secret values instead of masking them" };
    private readonly Option<bool> _verbose = CommonOptions.Verbose();

    public Command Build()
    {
        var command = new Command("render", "Render the Kubernetes objects of the farm (every release in every datacenter unless narrowed)")
        {
            _repo, _dc, _namespace, _release, _subset, _environment, _state, _stateFile, _output, _out, _revealSecrets, _verbose,
        };
        command.SetAction(ExecuteAsync);
        return command;
    }

    private async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var session = RepoSession.Open(env, parse.GetValue(_repo));
        var (subset, testEnvironment) = CommonOptions.Scope(parse.GetValue(_subset), parse.GetValue(_environment), () => session.Model, error);
        if (testEnvironment is not null)
        {
            session = await RepoSession.OpenAsync(env, parse.GetValue(_repo), testEnvironment, parse.GetValue(_state), cancellationToken);
        }

        var selection = new RenderSelection(parse.GetValue(_dc), parse.GetValue(_namespace), parse.GetValue(_release), subset);
        session.Renderer.CheckSelection(selection);
        var state = parse.GetValue(_stateFile) is not null || session.Renderer.NeedsState(selection)
            ? await session.ReadStateAsync(parse.GetValue(_stateFile), parse.GetValue(_state), cancellationToken)
            : null;
        var result = session.Renderer.Render(selection, state);
        if (result.Releases.Count == 0)
        {
            error.WriteLine("capstan: nothing to render: the selection matches no release");
            return ExitCodes.UserError;
        }

        if (parse.GetValue(_verbose))
        {
            foreach (var missing in result.MissingValuesFiles)
            {
                error.WriteLine($"capstan: note: {missing}");
            }
        }

        var reveal = parse.GetValue(_revealSecrets);
        if (parse.GetValue(_out) is { } outDir)
        {
            var count = WriteTree(env.Resolve(outDir), result, parse.GetValue(_output) == "json", reveal);
            error.WriteLine($"capstan: wrote {count} objects of {result.Releases.Count} releases to {outDir}");
            return ExitCodes.Success;
        }

        var writer = console.Profile.Out.Writer;
        writer.Write(parse.GetValue(_output) == "json" ? AsJsonList(result, reveal) : AsYamlStream(result, reveal));
        writer.Flush();
        return ExitCodes.Success;
    }

    /// <summary>All objects as one YAML stream, each headed by a comment naming its release.</summary>
    public static string AsYamlStream(RenderResult result, bool reveal)
    {
        var sb = new StringBuilder(64 * 1024);
        foreach (var (dc, ns) in result.Namespaces)
        {
            sb.Append("---\n# Source: ").Append(dc).Append('/').Append(ns.Metadata.Name).Append('\n');
            sb.Append(KubeSerializer.ToYaml(ns, reveal));
        }

        foreach (var item in ManifestText.ToYaml(result.Releases, reveal))
        {
            sb.Append("---\n# Source: ").Append(item.Release.Id).Append('\n').Append(item.Text);
        }

        return sb.ToString();
    }

    private static string AsJsonList(RenderResult result, bool reveal)
    {
        var items = new JsonArray();
        foreach (var obj in result.Namespaces.Select(n => (IKubeObject)n.Namespace).Concat(result.Releases.SelectMany(r => r.Objects)))
        {
            var node = KubeSerializer.ToNode(obj);
            items.Add(reveal ? node : SecretMasker.Mask(node));
        }

        var list = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = items };
        return KubeSerializer.ToJson(list) + "\n";
    }

    private static int WriteTree(string root, RenderResult result, bool json, bool reveal)
    {
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
        {
            if (!File.Exists(Path.Combine(root, OutMarker)))
            {
                throw new Core.Diagnostics.UserInputException(
                    $"refusing to write into '{root}': it is not empty and was not written by 'capstan render --out'");
            }

            Directory.Delete(root, recursive: true);
        }

        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, OutMarker), "Written by capstan render --out; the next render replaces this directory.\n");
        var count = 0;
        var extension = json ? ".json" : ".yaml";
        foreach (var (dc, ns) in result.Namespaces)
        {
            var dir = Path.Combine(root, dc, ns.Metadata.Name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "namespace" + extension), Serialize(ns, json, reveal));
            count++;
        }

        var texts = json
            ? result.Releases.SelectMany(r => r.Objects.Select(o => new ObjectText(r, o, Serialize(o, json: true, reveal)))).ToList()
            : ManifestText.ToYaml(result.Releases, reveal);
        foreach (var item in texts)
        {
            var dir = Path.Combine(root, item.Release.Datacenter, item.Release.Namespace, item.Release.Release);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, FileName(item.Object) + extension), item.Text);
            count++;
        }

        return count;
    }

    /// <summary>The file name of an object in an --out tree: <c>deployment-mw-web.eqiad.main</c>.</summary>
    public static string FileName(IKubeObject obj) => obj.Kind.ToLowerInvariant() + "-" + obj.Metadata.Name;

    private static string Serialize(IKubeObject obj, bool json, bool reveal)
    {
        var node = KubeSerializer.ToNode(obj);
        var shown = reveal ? node : SecretMasker.Mask(node);
        return json ? KubeSerializer.ToJson(shown) + "\n" : YamlEmitter.Emit(shown);
    }
}
