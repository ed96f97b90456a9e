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

    public static Option<string?> Environment() => new("--environment", "-e")
    {
        Description = "Only the releases of this environment (see environments in capstan.yaml)",
        HelpName = "ENV",
    };

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
    public const string NoReasonGiven = "no reason given";

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
