using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.Cli;

/// <summary>A loaded deployment repo for one command: where it is, its model, and how to read its dynamic state.</summary>
internal sealed class RepoSession
{
    private RepoSession(DirectoryRepoFiles files, FarmModel model, IReadOnlyList<Diagnostic> warnings)
    {
        Files = files;
        Model = model;
        Warnings = warnings;
        Renderer = new FarmRenderer(model, files);
    }

    public DirectoryRepoFiles Files { get; }

    public FarmModel Model { get; }

    public IReadOnlyList<Diagnostic> Warnings { get; }

    public FarmRenderer Renderer { get; }

    /// <summary>Finds and loads the repo: --repo, else $CAPSTAN_REPO, else the working directory.</summary>
    public static RepoSession Open(CliEnvironment env, string? repoOption)
    {
        var dir = env.Resolve(repoOption ?? env.Get("CAPSTAN_REPO") ?? ".");
        if (!Directory.Exists(dir))
        {
            throw new UserInputException($"deployment repo '{dir}' does not exist");
        }

        var files = new DirectoryRepoFiles(dir);
        var (model, warnings) = RepoLoader.Load(files);
        return new RepoSession(files, model, warnings);
    }

    /// <summary>
    /// Reads the dynamic state: from <paramref name="stateFile"/> when given, else from the repo's <c>state</c> endpoint
    /// when it is a <c>file://</c> YAML file. Returns null when neither exists; the renderer then refuses to render
    /// anything that depends on the state (fail closed).
    /// </summary>
    public DynamicState? ReadState(CliEnvironment env, string? stateFile)
    {
        string path;
        string display;
        if (stateFile is not null)
        {
            path = env.Resolve(stateFile);
            display = stateFile;
            if (!File.Exists(path))
            {
                throw new UserInputException($"state file '{stateFile}' does not exist");
            }
        }
        else if (Model.StateEndpoint.StartsWith("file://", StringComparison.Ordinal))
        {
            display = Model.StateEndpoint["file://".Length..];
            path = Path.Combine(Files.Root, display);
            if (!File.Exists(path))
            {
                return null;
            }
        }
        else
        {
            throw new UserInputException($"state store '{Model.StateEndpoint}' is not supported yet; pass --state-file FILE");
        }

        return DynamicStateFile.Parse(File.ReadAllText(path), display, [.. Model.DatacenterNames]);
    }
}
