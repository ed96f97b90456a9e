using System.CommandLine;

namespace Capstan.Cli;

/// <summary>Options several commands share, declared once.</summary>
internal static class CommonOptions
{
    public static Option<string?> Repo() => new("--repo")
    {
        Description = "The deployment repo (default: $CAPSTAN_REPO, else the current directory)",
        HelpName = "DIR",
    };

    public static Option<string?> Datacenter() => new("--dc") { Description = "Only this datacenter", HelpName = "DC" };

    public static Option<string?> Namespace() => new("--namespace", "-n") { Description = "Only this server group (namespace)", HelpName = "NS" };

    public static Option<string?> Release() => new("--release", "-r") { Description = "Only releases with this name", HelpName = "RELEASE" };

    public static Option<string?> Subset() => new("--subset")
    {
        Description = "Only the releases of this subset (subsets: in capstan.yaml)",
        HelpName = "SUBSET",
    };

    /// <summary>
    /// <c>--environment NAME</c> where it used to name a release subset: a test environment now. A subset's name is
    /// still taken as <c>--subset</c> for one release, with a warning (<see cref="Scope"/>).
    /// </summary>
    public static Option<string?> Environment() => new("--environment", "-e")
    {
        Description = "Act inside this test environment ('capstan env list'): its namespaces, its own state and revisions (a release subset's name is still read as --subset, with a warning)",
        HelpName = "NAME",
    };

    /// <summary>
    /// The subset and the test environment that <c>--subset</c> and <c>--environment</c> name. An <c>--environment</c>
    /// that names one of capstan.yaml's subsets is the old spelling of <c>--subset</c>: taken as it, with a warning.
    /// </summary>
    public static (string? Subset, string? TestEnvironment) Scope(string? subset, string? environment, Func<Core.Config.FarmModel> production, TextWriter error)
    {
        // The repo is read for its subsets' names only when --environment is given.
        if (environment is null || production().Subsets.All(s => s.Name != environment))
        {
            return (subset, environment);
        }

        if (subset is not null)
        {
            throw new Core.Diagnostics.UserInputException($"--environment {environment} names a release subset, and --subset {subset} another: give the subset once, with --subset");
        }

        error.WriteLine($"capstan: warning: --environment {environment} names a release subset; that spelling goes in the next release: use --subset {environment} (--environment names a test environment)");
        return (environment, null);
    }

    public static Option<string?> TestEnvironment() => new("--environment")
    {
        Description = "Act inside this test environment ('capstan env list'): its own dynamic state, lock and namespaces",
        HelpName = "NAME",
    };

    public static Option<string?> StateFile() => new("--state-file")
    {
        Description = "Read the dynamic state (primary_dc, read_only, maintenance_enabled) from this YAML file instead of the repo's state store",
        HelpName = "FILE",
    };

    public static Option<string?> State() => new("--state")
    {
        Description = "The state store (etcd://host:port[,host:port][?prefix=/capstan] or file://PATH); default: $CAPSTAN_STATE, else capstan.yaml's state",
        HelpName = "URL",
    };

    public static Option<string?> Reason(string description = "Why: recorded in the state's history (required)") => new("--reason")
    {
        Description = description,
        HelpName = "TEXT",
    };

    /// <summary>--verbose: also list what is normally summed up in one line (optional values files that do not exist).</summary>
    public static Option<bool> Verbose() => new("--verbose", "-v") { Description = "List every optional values file that does not exist (one summary line otherwise)" };

    /// <summary>What a deploy records as its reason when none is given.</summary>
    public const string NoReasonGiven = Capstan.Deploy.Actions.DeployIntent.NoReasonGiven;

    public static Option<string?> Actor() => new("--actor")
    {
        Description = "Who: recorded in the state's history (default: the OS user)",
        HelpName = "NAME",
    };

    public static Option<string> Output(params string[] formats)
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = $"Output format: {string.Join(", ", formats)}",
            DefaultValueFactory = _ => formats[0],
            HelpName = "FORMAT",
        };
        option.AcceptOnlyFromAmong(formats);
        return option;
    }
}
