using System.Globalization;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;

namespace Capstan.Core.Environments;

/// <summary>How an environment relates to production's repo: it follows it, or is pinned to one revision.</summary>
public enum EnvironmentBase
{
    /// <summary>Every refresh renders against the repo as it is now.</summary>
    Follow,

    /// <summary>Pinned to the repo revision and manifests it was created from.</summary>
    Pinned,
}

/// <summary>
/// A purpose class: what an environment of that purpose may be. <see cref="MaxLifetime"/> caps its expiry;
/// <see cref="RequiresLinks"/> asks for links to the task or patch; <see cref="Base"/>, when set, is the only base allowed.
/// </summary>
public sealed record PurposeClass(string Name, TimeSpan MaxLifetime, bool RequiresLinks, EnvironmentBase? Base, string Description)
{
    /// <summary>How long an environment may go without activity (a deploy, a state change, a change of its record) before gc puts it to sleep; null for never.</summary>
    public TimeSpan? SleepAfter { get; init; }

    /// <summary>The ResourceQuota of each of the environment's namespaces (<c>spec.hard</c>); empty for none.</summary>
    public IReadOnlyDictionary<string, string> Quota { get; init; } = DefaultQuota;

    /// <summary>The defaults of a container that sets none (a LimitRange's <c>defaultRequest</c> and <c>default</c>); empty for none.</summary>
    public ContainerDefaults Defaults { get; init; } = ContainerDefaults.Default;

    /// <summary>Where its environments get their backends from; null for the farm's profile (<c>test-environments.backends</c>).</summary>
    public BackendProfile? Backends { get; init; }

    /// <summary>The template of its environments' URL hosts (<c>{name}</c>, <c>{group}</c>); null for the farm's (<c>test-environments.host</c>).</summary>
    public string? Host { get; init; }

    /// <summary>The default quota per namespace: room for a few MediaWiki pods of seven or eight containers and their rollout.</summary>
    public static IReadOnlyDictionary<string, string> DefaultQuota { get; } = new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["pods"] = "20",
        ["requests.cpu"] = "40",
        ["requests.memory"] = "64Gi",
        ["limits.memory"] = "128Gi",
    };
}

/// <summary>What a container that sets no resources of its own gets in an environment (a LimitRange item of type Container).</summary>
public sealed record ContainerDefaults(IReadOnlyDictionary<string, string> Requests, IReadOnlyDictionary<string, string> Limits)
{
    /// <summary>100m CPU and 128Mi requested, 512Mi memory limit.</summary>
    public static ContainerDefaults Default { get; } = new(
        new SortedDictionary<string, string>(StringComparer.Ordinal) { ["cpu"] = "100m", ["memory"] = "128Mi" },
        new SortedDictionary<string, string>(StringComparer.Ordinal) { ["memory"] = "512Mi" });
}

/// <summary>The purpose classes of a farm and the checks an environment's ownership must pass.</summary>
public sealed record EnvironmentPolicy(IReadOnlyList<PurposeClass> Classes)
{
    /// <summary>Where environments get their backends from unless their class says: by default, all their own.</summary>
    public BackendProfile Backends { get; init; } = BackendProfile.AllOwn;

    /// <summary>The backend profile of a class.</summary>
    public BackendProfile BackendsOf(PurposeClass cls) => cls.Backends ?? Backends;

    /// <summary>The URL host template every class uses unless it says: <c>{name}.{group}.env.example.org</c>.</summary>
    public string Host { get; init; } = "{name}.{group}.env.example.org";

    /// <summary>The URL host template of a class.</summary>
    public string HostOf(PurposeClass cls) => cls.Host ?? Host;

    /// <summary>The defaults: ci (1 day), feature (30 days, links), integration (90 days, follows production), demo (30 days, pinned).</summary>
    public static EnvironmentPolicy Default { get; } = new(
    [
        new("ci", TimeSpan.FromDays(1), false, null, "a test run of a change; gone within a day"),
        new("feature", TimeSpan.FromDays(30), true, null, "one change under development, with links to its task or patch") { SleepAfter = TimeSpan.FromDays(3) },
        new("integration", TimeSpan.FromDays(90), false, EnvironmentBase.Follow, "long-lived integration testing; always follows production"),
        new("demo", TimeSpan.FromDays(30), false, EnvironmentBase.Pinned, "showing a fixed state; pinned to the revision it was made from"),
    ]);

    private static readonly string[] Keys = ["classes", "backends", "host"];
    private static readonly string[] ClassKeys = ["max-lifetime", "links", "base", "description", "sleep-after", "quota", "container-defaults", "backends", "host"];
    private static readonly string[] DefaultsKeys = ["requests", "limits"];

    /// <summary>
    /// The policy of <c>capstan.yaml</c>'s <c>test-environments:</c>: each class under <c>classes:</c> changes the
    /// default class of its name field by field, or adds a class (which then needs <c>max-lifetime</c>). Problems go to
    /// the reader's diagnostics with file and line.
    /// </summary>
    public static EnvironmentPolicy Read(Config.NodeReader reader, Yaml.ValueNode? node)
    {
        var map = reader.Map(node, "test-environments", Keys);
        var farmBackends = BackendProfile.Read(reader, map?["backends"], "test-environments.backends", BackendProfile.AllOwn, allowProduction: false) ?? BackendProfile.AllOwn;
        var farmHost = HostTemplate(reader, map?["host"], "test-environments.host") ?? Default.Host;
        if (reader.Map(map?["classes"], "test-environments.classes") is not { } classes)
        {
            return Default with { Backends = farmBackends, Host = farmHost };
        }

        var result = Default.Classes.ToList();
        foreach (var entry in classes.Entries)
        {
            var what = $"test-environments.classes.{entry.Key}";
            if (reader.Map(entry.Value, what, ClassKeys) is not { } fields)
            {
                continue;
            }

            var index = result.FindIndex(c => c.Name == entry.Key);
            TimeSpan? lifetime = null;
            if (reader.String(fields["max-lifetime"], $"{what}.max-lifetime") is { } text)
            {
                try
                {
                    lifetime = ParseDuration(text);
                }
                catch (UserInputException ex)
                {
                    reader.Diagnostics.Error(fields["max-lifetime"]!.Location, $"{what}.max-lifetime: {ex.Message}");
                }
            }

            if (index < 0 && lifetime is null)
            {
                if (fields["max-lifetime"] is null)
                {
                    reader.Missing(fields, "max-lifetime", what);
                }

                continue;
            }

            var cls = index >= 0 ? result[index] : new PurposeClass(entry.Key, lifetime!.Value, false, null, string.Empty);
            cls = cls with
            {
                MaxLifetime = lifetime ?? cls.MaxLifetime,
                RequiresLinks = reader.Bool(fields["links"], $"{what}.links") ?? cls.RequiresLinks,
                Description = reader.String(fields["description"], $"{what}.description") ?? cls.Description,
            };
            if (fields["base"] is { } baseNode)
            {
                cls = cls with { Base = reader.Enum(baseNode, $"{what}.base", [("follow", 1), ("pinned", 2), ("any", 3)]) switch { 1 => EnvironmentBase.Follow, 2 => EnvironmentBase.Pinned, 3 => null, _ => cls.Base } };
            }

            if (reader.String(fields["sleep-after"], $"{what}.sleep-after") is { } idle)
            {
                try
                {
                    cls = cls with { SleepAfter = idle == "never" ? null : ParseDuration(idle) };
                }
                catch (UserInputException ex)
                {
                    reader.Diagnostics.Error(fields["sleep-after"]!.Location, $"{what}.sleep-after: {ex.Message} (or never)");
                }
            }

            if (fields["quota"] is { } quotaNode)
            {
                cls = cls with { Quota = Quantities(reader, quotaNode, $"{what}.quota") };
            }

            if (reader.Map(fields["container-defaults"], $"{what}.container-defaults", DefaultsKeys) is { } defaults)
            {
                cls = cls with
                {
                    Defaults = new ContainerDefaults(
                        defaults["requests"] is { } r ? Quantities(reader, r, $"{what}.container-defaults.requests") : cls.Defaults.Requests,
                        defaults["limits"] is { } l ? Quantities(reader, l, $"{what}.container-defaults.limits") : cls.Defaults.Limits),
                };
            }

            if (BackendProfile.Read(reader, fields["backends"], $"{what}.backends", farmBackends, allowProduction: true) is { } profile)
            {
                cls = cls with { Backends = profile };
            }

            if (HostTemplate(reader, fields["host"], $"{what}.host") is { } host)
            {
                cls = cls with { Host = host };
            }

            if (index >= 0)
            {
                result[index] = cls;
            }
            else
            {
                result.Add(cls);
            }
        }

        return new EnvironmentPolicy(result) { Backends = farmBackends, Host = farmHost };
    }

    /// <summary>A URL host template: a DNS name once <c>{name}</c> and <c>{group}</c> are filled in, and both of them in it (one URL per environment and group).</summary>
    private static string? HostTemplate(Config.NodeReader reader, Yaml.ValueNode? node, string what)
    {
        if (reader.String(node, what) is not { } template)
        {
            return null;
        }

        if (!template.Contains("{name}", StringComparison.Ordinal) || !template.Contains("{group}", StringComparison.Ordinal)
            || KubeNames.CheckDnsSubdomain(EnvironmentOverlay.UrlHost(template, "name", "group")) is not null)
        {
            reader.Diagnostics.Error(node!.Location, $"{what} must be a host name with {{name}} and {{group}} in it, such as {{name}}.{{group}}.env.example.org, not \"{template}\"");
            return null;
        }

        return template;
    }

    /// <summary>Checks every profile against the farm's backends, reporting a name or set that does not exist at its profile's line.</summary>
    public void CheckBackends(Config.NodeReader reader, Yaml.ValueNode? node, BackendCatalog catalog)
    {
        var map = node as Yaml.ValueMap;
        void Report(BackendProfile profile, Yaml.ValueNode? at, string what)
        {
            foreach (var problem in profile.Problems(catalog))
            {
                reader.Diagnostics.Error(at?.Location ?? Diagnostics.SourceLocation.OfFile(Config.RepoLoader.MainFile), $"{what}: {problem}");
            }
        }

        Report(Backends, map?["backends"], "test-environments.backends");
        foreach (var cls in Classes.Where(c => c.Backends is not null))
        {
            var at = (map?["classes"] as Yaml.ValueMap)?[cls.Name] is Yaml.ValueMap fields ? fields["backends"] : null;
            Report(cls.Backends!, at, $"test-environments.classes.{cls.Name}.backends");
        }
    }

    private static SortedDictionary<string, string> Quantities(Config.NodeReader reader, Yaml.ValueNode node, string what)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in reader.Map(node, what)?.Entries ?? [])
        {
            if (reader.ScalarText(entry.Value, $"{what}.{entry.Key}") is not { } text)
            {
                continue;
            }

            if (!Quantity.TryParse(text, out _))
            {
                reader.Diagnostics.Error(entry.Value.Location, $"{what}.{entry.Key} must be a quantity such as 500m, 4 or 2Gi, not \"{text}\"");
                continue;
            }

            result[entry.Key] = text;
        }

        return result;
    }

    /// <summary>A class by name; a <see cref="UserInputException"/> listing the classes when there is none.</summary>
    public PurposeClass Class(string purpose) =>
        Classes.FirstOrDefault(c => c.Name == purpose)
        ?? throw new UserInputException($"unknown purpose '{purpose}' (allowed: {string.Join(", ", Classes.Select(c => c.Name))})");

    /// <summary>
    /// Checks what an environment is created (or extended) with; throws <see cref="UserInputException"/> naming every
    /// problem: no owner, an expiry in the past or beyond the class's cap (which it names), links the class asks for,
    /// a base the class does not allow.
    /// </summary>
    public PurposeClass Check(string? owner, string purpose, DateTimeOffset expires, DateTimeOffset now, EnvironmentBase @base, IReadOnlyList<string> links)
    {
        FreeText.Check("the owner", owner);
        FreeText.Check("a link", links);
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(owner))
        {
            problems.Add("an environment needs an owner (--owner): who answers for it");
        }

        var cls = Class(purpose);
        if (expires <= now)
        {
            problems.Add($"the expiry {Format(expires)} is not in the future");
        }
        else if (expires - now > cls.MaxLifetime)
        {
            problems.Add($"{Article(cls.Name)} {cls.Name} environment lives at most {Days(cls.MaxLifetime)}; {Format(expires)} is {Days(expires - now)} away (latest: {Format(now + cls.MaxLifetime)})");
        }

        if (cls.RequiresLinks && links.Count == 0)
        {
            problems.Add($"{Article(cls.Name)} {cls.Name} environment needs a link to its task or patch (--link URL)");
        }

        if (cls.Base is { } required && required != @base)
        {
            problems.Add($"{Article(cls.Name)} {cls.Name} environment must be {(required == EnvironmentBase.Follow ? "following production (drop --pin)" : "pinned (--pin)")}");
        }

        return problems.Count == 0 ? cls : throw new UserInputException(string.Join("; ", problems));
    }

    /// <summary>A duration as the user writes it: <c>7d</c>, <c>12h</c>, <c>90m</c>.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        // Up to ten years in any unit: longer is no environment's lifetime (and would overflow a date).
        if (text.Length >= 2 && int.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 && n <= 3650 * 24 * 60)
        {
            switch (text[^1])
            {
                case 'd' when n <= 3650:
                    return TimeSpan.FromDays(n);
                case 'h' when n <= 3650 * 24:
                    return TimeSpan.FromHours(n);
                case 'm':
                    return TimeSpan.FromMinutes(n);
            }
        }

        throw new UserInputException($"'{text}' is not a duration (a whole number and d, h or m: 7d, 12h, 90m)");
    }

    private static string Article(string word) => "aeiou".Contains(word[0], StringComparison.Ordinal) ? "an" : "a";

    private static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private static string Days(TimeSpan span) =>
        span.TotalDays >= 1 && span.TotalDays % 1 == 0 ? $"{span.TotalDays:0} day{(span.TotalDays == 1 ? string.Empty : "s")}"
        : span.TotalDays >= 1 ? $"{span.TotalDays:0.#} days"
        : $"{span.TotalHours:0.#} hours";
}

/// <summary>Environment names: one DNS label, and every namespace it prefixes (<c>NAME--mw-web</c>) a valid namespace.</summary>
public static class EnvironmentNames
{
    /// <summary>The separator between an environment's name and a production namespace.</summary>
    public const string Separator = "--";

    /// <summary>The namespace of a production namespace inside an environment.</summary>
    public static string Namespace(string environment, string productionNamespace) => environment + Separator + productionNamespace;

    /// <summary>
    /// Checks a name against the namespaces it will prefix; throws <see cref="UserInputException"/> saying what is wrong
    /// (the longest namespace and how many characters too long, for a name that is too long).
    /// </summary>
    public static void Check(string name, IEnumerable<string> productionNamespaces)
    {
        if (KubeNames.CheckDnsLabel(name) is { } why)
        {
            throw new UserInputException($"environment name '{name}' {why}");
        }

        if (name.Contains(Separator, StringComparison.Ordinal))
        {
            throw new UserInputException($"environment name '{name}' must not contain '{Separator}' (it separates the name from the namespace)");
        }

        var longest = productionNamespaces.MaxBy(n => n.Length);
        if (longest is not null && Namespace(name, longest).Length > KubeNames.MaxLabelLength)
        {
            var over = Namespace(name, longest).Length - KubeNames.MaxLabelLength;
            throw new UserInputException(
                $"environment name '{name}' is {over} character{(over == 1 ? string.Empty : "s")} too long: namespace '{Namespace(name, longest)}' would exceed {KubeNames.MaxLabelLength} characters " +
                $"(at most {KubeNames.MaxLabelLength - Separator.Length - longest.Length} characters with namespace {longest})");
        }
    }
}
