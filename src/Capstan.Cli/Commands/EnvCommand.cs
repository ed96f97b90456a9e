using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env create | list | show | delete</c>: owned, expiring test environments of the farm.</summary>
internal sealed class EnvCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var command = new Command("env", "Test environments: small, owned, expiring copies of production's server groups in their own namespaces");
        command.Add(BuildCreate());
        command.Add(BuildList());
        command.Add(BuildShow());
        command.Add(BuildDrift());
        command.Add(BuildRefresh());
        command.Add(BuildExtend());
        command.Add(BuildSleepOrWake(sleep: true));
        command.Add(BuildSleepOrWake(sleep: false));
        command.Add(BuildDelete());
        command.Add(BuildGc());
        command.Add(new EnvSecretsCommand(console, env).Build());
        return command;
    }

    private Command BuildGc()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be deleted and who warned; change nothing" };
        var notifyFile = new Option<string?>("--notify-file") { Description = "Append each warning as a JSON line to this file", HelpName = "PATH" };
        var webhook = new Option<string?>("--webhook") { Description = "POST each warning as JSON to this URL", HelpName = "URL" };
        var warnBefore = new Option<string?>("--warn-before") { Description = "When owners are warned before expiry (default: 3d,1d)", HelpName = "DURATIONS" };
        var refreshFollowers = new Option<bool>("--refresh-followers") { Description = "Also refresh every followed environment that fell behind the repo" };
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("gc", "Delete expired environments and interrupted creates, sleep idle ones, warn owners before expiry (once per threshold), and refresh followers behind the repo when asked")
        {
            repo, state, dryRun, notifyFile, webhook, warnBefore, refreshFollowers, actor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            Uri? hook = null;
            if (parse.GetValue(webhook) is { } url && (!Uri.TryCreate(url, UriKind.Absolute, out hook) || hook.Scheme is not ("http" or "https")))
            {
                throw new Core.Diagnostics.UserInputException($"--webhook '{url}' is not an http or https URL");
            }

            var thresholds = parse.GetValue(warnBefore) is { } list
                ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(EnvironmentPolicy.ParseDuration).ToList()
                : CollectOptions.DefaultWarnings;
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
            var service = session.Environments();
            var actions = await new EnvironmentCollector(service, TimeProvider.System).CollectAsync(
                new CollectOptions(thresholds, new NotificationSink(parse.GetValue(notifyFile), hook), parse.GetValue(dryRun)) { RefreshFollowers = parse.GetValue(refreshFollowers) },
                session.Repo.Actor(parse.GetValue(actor)),
                ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonArray([.. actions.Select(a => (JsonNode)new JsonObject { ["environment"] = a.Environment, ["owner"] = a.Owner, ["action"] = a.What, ["failed"] = a.Failed, ["dryRun"] = parse.GetValue(dryRun) })])));
            }
            else
            {
                foreach (var a in actions)
                {
                    writer.WriteLine($"{(parse.GetValue(dryRun) ? "would " : string.Empty)}{a.What}: {a.Environment}");
                }

                if (actions.Count == 0)
                {
                    writer.WriteLine("nothing to do");
                }
            }

            if (actions.Count(a => a.Failed) is > 0 and var failed)
            {
                error.WriteLine($"capstan: error: {failed} environment{(failed == 1 ? string.Empty : "s")} could not be handled; the others were");
                return ExitCodes.Failure;
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildDrift()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("table", "json");
        var command = new Command("drift", "How an environment differs from production: each values key with the file:line that set it on each side, the image, releases only production runs") { name, repo, state, output };
        command.SetAction(async (parse, ct) =>
        {
            var record = await OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            var production = await RepoSession.Open(env, parse.GetValue(repo)).ReadStateAsync(null, parse.GetValue(state), ct, initialise: false);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, Selection(record), ct, readState: false);
            var service = session.Environments();
            var drift = await service.DriftAsync(record.Name, production, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(drift.ToJson()));
                return ExitCodes.Success;
            }

            var table = new PlainTable("RELEASE", "KEY", "ENVIRONMENT", "SET BY", "PRODUCTION", "SET BY");
            foreach (var v in drift.Values)
            {
                table.Add(v.Release, v.Difference.Path, v.Difference.Environment ?? "(absent)", v.Difference.EnvironmentSetBy?.ToString() ?? "-", v.Difference.Production ?? "(absent)", v.Difference.ProductionSetBy?.ToString() ?? "-");
            }

            writer.Write(drift.Values.Count == 0 ? $"{drift.Environment}: no values differ from production\n" : table.ToString());
            foreach (var d in drift.State)
            {
                writer.WriteLine($"dynamic state: {d.Key} is {d.Environment} here, {d.Production} in production");
            }

            foreach (var only in drift.OnlyInProduction)
            {
                writer.WriteLine($"only in production: {only}");
            }

            foreach (var live in drift.Live)
            {
                writer.WriteLine($"live: {FreeText.Printable(live)}");
            }

            if (drift.Backends.Count > 0)
            {
                var backends = new PlainTable("BACKEND", "KIND", "SOURCE", "ENVIRONMENT", "PRODUCTION");
                foreach (var b in drift.Backends)
                {
                    backends.Add(b.Backend, b.Kind, b.Source, b.Environment, b.Production);
                }

                writer.Write(backends.ToString());
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildRefresh()
    {
        var name = new Argument<string?>("name") { Description = "The environment (or --all)", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Every environment" };
        var allBehind = new Option<bool>("--all-behind") { Description = "Every followed environment that is behind the repo (the others are left alone)" };
        var force = new Option<bool>("--force") { Description = "Refresh someone else's environment (recorded in its history)" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var actor = CommonOptions.Actor();
        var command = new Command("refresh", "Re-render followed environments against the repo as it is now and deploy them; report how far pinned ones are behind") { name, all, allBehind, force, repo, state, actor };
        command.SetAction(async (parse, ct) =>
        {
            if (new[] { parse.GetValue(name) is not null, parse.GetValue(all), parse.GetValue(allBehind) }.Count(b => b) != 1)
            {
                throw new Core.Diagnostics.UserInputException("name one environment, or --all, or --all-behind");
            }

            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
            var service = session.Environments();
            var who = session.Repo.Actor(parse.GetValue(actor));
            var targets = parse.GetValue(name) is { } one
                ? [(await service.Records.GetAsync(one, ct) ?? throw new Core.Diagnostics.UserInputException($"there is no environment '{one}'")).Record]
                : await service.Records.ListAsync(ct);
            if (parse.GetValue(name) is { } single && targets[0].Owner != who && !parse.GetValue(force))
            {
                throw new Core.Diagnostics.UserInputException($"environment '{single}' belongs to {targets[0].Owner}; to refresh it as {who}, add --force (recorded in its history)");
            }

            await RebuildAsync(session, targets, who, parse.GetValue(force) || parse.GetValue(name) is null, ct);
            var report = await service.RefreshAsync(
                parse.GetValue(name), session.Repo.Actor(parse.GetValue(actor)), new ProgressLines(error), ct, parse.GetValue(force), onlyBehind: parse.GetValue(allBehind));
            foreach (var line in report.Lines)
            {
                console.Profile.Out.Writer.WriteLine(line);
            }

            if (report.Failed > 0)
            {
                error.WriteLine($"capstan: error: {report.Failed} environment{(report.Failed == 1 ? string.Empty : "s")} could not be refreshed");
                return ExitCodes.Failure;
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildExtend()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var by = new Option<string?>("--by") { Description = "How much longer: 7d, 12h (within the class's cap, counted from now)", HelpName = "DURATION", Required = true };
        var force = new Option<bool>("--force") { Description = "Extend someone else's environment (recorded with your name)" };
        var actor = CommonOptions.Actor();
        var command = new Command("extend", "Move an environment's expiry later, within its class's cap") { name, repo, state, by, force, actor };
        command.SetAction(async (parse, ct) =>
        {
            var duration = EnvironmentPolicy.ParseDuration(parse.GetValue(by)!);
            var record = await OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, Selection(record), ct, readState: false);
            var service = session.Environments();
            var extended = await service.ExtendAsync(record.Name, duration, session.Repo.Actor(parse.GetValue(actor)), parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine($"environment {extended.Name} now expires {When(extended.Expires)}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildSleepOrWake(bool sleep)
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var force = new Option<bool>("--force") { Description = "Act on someone else's environment (recorded with your name)" };
        var actor = CommonOptions.Actor();
        var command = sleep
            ? new Command("sleep", "Scale every Deployment of an environment to zero, keeping the replicas to restore") { name, repo, state, force, actor }
            : new Command("wake", "Scale a sleeping environment's Deployments back, and wait until they are rolled out") { name, repo, state, force, actor };
        command.SetAction(async (parse, ct) =>
        {
            var record = await OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, Selection(record), ct, readState: false);
            var service = session.Environments();
            var who = session.Repo.Actor(parse.GetValue(actor));
            var after = sleep ? await service.SleepAsync(record.Name, who, parse.GetValue(force), ct) : await service.WakeAsync(record.Name, who, parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine(sleep
                ? $"environment {after.Name} is asleep: {after.Sleeping!.Count} Deployments at zero"
                : $"environment {after.Name} is awake: every Deployment rolled out");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The selection that connects to every datacenter of an environment.</summary>
    private static RenderSelection Selection(EnvironmentRecord record) => new(record.Datacenters.Count == 1 ? record.Datacenters[0] : null);

    private async Task<EnvironmentRecord> OpenRecordAsync(string? repoOption, string? stateOption, string name, CancellationToken cancellationToken)
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

    private Command BuildCreate()
    {
        var name = new Argument<string>("name") { Description = "The environment's name (its namespaces are NAME--<group>)" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var owner = new Option<string?>("--owner") { Description = "Who answers for it (required)", HelpName = "WHO" };
        var purpose = new Option<string?>("--purpose") { Description = "Its class: ci (1 day), feature (30 days, needs --link), integration (90 days, follows production), demo (30 days, --pin)", HelpName = "CLASS", Required = true };
        var expires = new Option<string?>("--expires") { Description = "How long it lives, within its class's cap: 12h, 7d", HelpName = "DURATION", Required = true };
        var description = new Option<string?>("--description") { Description = "What it is for", HelpName = "TEXT" };
        var links = new Option<string[]>("--link") { Description = "A link to the task or patch (repeatable)", HelpName = "URL", AllowMultipleArgumentsPerToken = false };
        var pin = new Option<bool>("--pin") { Description = "Pinned to the repo as it is now, instead of following production" };
        var image = new Option<string?>("--image") { Description = "A MediaWiki image that wins over every values layer", HelpName = "REF" };
        var dc = new Option<string[]>("--dc") { Description = "A datacenter whose cluster runs it (repeatable: two make a two-datacenter environment; default: the primary)", HelpName = "DC" };
        var set = new Option<string[]>("--set") { Description = "A value for this environment, after every values file: key.path=value (repeatable)", HelpName = "KEY=VALUE" };
        var groups = new Option<string[]>("--group") { Description = "A server group to include (repeatable; default: the web and API groups)", HelpName = "NS" };
        var values = new Option<string[]>("--values") { Description = "Another values file layered after environments/NAME.yaml (repeatable)", HelpName = "FILE" };
        var sources = new Option<string[]>("--source") { Description = "Run a developer's code tree: build an image with it in place of the repo's tree of that version (repeatable; rebuilt by every refresh)", HelpName = "VERSION=DIR" };
        var config = new Option<string?>("--config") { Description = "Run a developer's config tree in place of the repo's (rebuilt by every refresh)", HelpName = "DIR" };
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("create", "Create an environment: record its owner, purpose and expiry, then deploy its groups (one replica each, canaries off) into its own namespaces")
        {
            name, repo, state, owner, purpose, expires, description, links, pin, image, sources, config, dc, groups, values, set, actor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var production = await repoSession.ReadStateAsync(null, parse.GetValue(state), ct, initialise: false);
            var datacenters = parse.GetValue(dc) is { Length: > 0 } given ? given : [production.PrimaryDc];
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(datacenters.Length == 1 ? datacenters[0] : null), ct, readState: false);
            var who = session.Repo.Actor(parse.GetValue(actor));
            var service = session.Environments();
            var trees = SourceTrees(parse.GetValue(sources) ?? [], parse.GetValue(config));
            var built = parse.GetValue(image);
            if (trees.Count > 0)
            {
                if (built is not null)
                {
                    throw new Core.Diagnostics.UserInputException("--image names an image and --source/--config build one: give one or the other");
                }

                // Everything else is checked before the build, so a mistake costs no build.
                EnvironmentNames.Check(parse.GetValue(name)!, []);
                service.Policy.Check(parse.GetValue(owner), parse.GetValue(purpose)!, env.Time.GetUtcNow() + EnvironmentPolicy.ParseDuration(parse.GetValue(expires)!), env.Time.GetUtcNow(),
                    parse.GetValue(pin) ? EnvironmentBase.Pinned : EnvironmentBase.Follow, parse.GetValue(links) ?? []);
                built = await session.Images().BuildForEnvironmentAsync(parse.GetValue(name)!, trees, null, ct);
            }

            var request = new EnvironmentRequest(
                parse.GetValue(name)!, parse.GetValue(owner), parse.GetValue(purpose)!, parse.GetValue(description) ?? string.Empty,
                parse.GetValue(links) ?? [], EnvironmentPolicy.ParseDuration(parse.GetValue(expires)!), parse.GetValue(pin), built,
                datacenters, parse.GetValue(groups) ?? [], parse.GetValue(values) ?? [], who)
            {
                Settings = parse.GetValue(set) ?? [],
                Sources = trees,
            };
            var progress = new ProgressLines(error);
            WarnOfProduction(EnvironmentScope.Backends(session.Repo.Model, request.Name, request.Purpose));
            var (record, _) = await service.CreateAsync(request, production, progress, ct);
            var urls = EnvironmentScope.Urls(session.Repo.Model, record);
            Print(parse.GetValue(output) == "json", record, $"environment {record.Name} is ready in {string.Join(", ", record.Datacenters.SelectMany(d => record.Groups.Select(g => $"{d}/{EnvironmentNames.Namespace(record.Name, g)}")))}; it expires {When(record.Expires)}", urls);
            foreach (var (group, url) in urls)
            {
                if (parse.GetValue(output) != "json")
                {
                    console.Profile.Out.Writer.WriteLine($"  {group}: {url}");
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildList()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("table", "json");
        var noHealth = new Option<bool>("--no-health") { Description = "Do not ask the clusters how ready each environment is, nor count its drift (the records only)" };
        var command = new Command("list", "The environments: owner, purpose, age, time left, health (ready/desired), drift count, image, datacenters, groups, followed or pinned") { repo, state, output, noHealth };
        command.SetAction(async (parse, ct) =>
        {
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = repoSession.OpenState(parse.GetValue(state));
            IReadOnlyList<EnvironmentRecord> records;
            await using (store)
            {
                records = await new EnvironmentStore(store, repoSession.Model.Project, TimeProvider.System).ListAsync(ct);
            }

            var health = new Dictionary<string, (int Ready, int Desired)>(StringComparer.Ordinal);
            var drift = new Dictionary<string, string>(StringComparer.Ordinal);
            var behind = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (!parse.GetValue(noHealth) && records.Count > 0)
            {
                var production = await repoSession.ReadStateAsync(null, parse.GetValue(state), ct, initialise: false);
                var dcs = records.SelectMany(r => r.Datacenters).Distinct(StringComparer.Ordinal).ToList();
                await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(dcs.Count == 1 ? dcs[0] : null), ct, readState: false);
                var service = session.Environments();
                foreach (var r in records)
                {
                    health[r.Name] = await service.HealthAsync(r, ct);
                    try
                    {
                        drift[r.Name] = (await service.DriftAsync(r.Name, production, ct)).Count.ToString(CultureInfo.InvariantCulture);
                        behind[r.Name] = await service.BehindAsync(r, ct);
                    }
                    catch (Exception ex) when (ex is Core.Diagnostics.UserInputException or Core.Diagnostics.RepoValidationException)
                    {
                        // The environment no longer renders against this repo (a values file gone, a group renamed): 'env drift' says why.
                        drift[r.Name] = "?";
                    }
                }
            }

            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonArray([.. records.Select(r =>
                {
                    var doc = WithUrls(JsonNode.Parse(r.ToJson())!.AsObject(), EnvironmentScope.Urls(repoSession.Model, r));
                    if (health.TryGetValue(r.Name, out var h))
                    {
                        doc["health"] = new JsonObject { ["ready"] = h.Ready, ["desired"] = h.Desired };
                    }

                    if (drift.TryGetValue(r.Name, out var d))
                    {
                        doc["drift"] = int.TryParse(d, CultureInfo.InvariantCulture, out var n) ? n : null;
                    }

                    if (behind.TryGetValue(r.Name, out var b))
                    {
                        doc["behind"] = new JsonArray([.. b.Select(line => (JsonNode)line)]);
                    }

                    return (JsonNode)doc;
                })])));
                return ExitCodes.Success;
            }

            var now = env.Time.GetUtcNow();
            var table = new PlainTable("NAME", "OWNER", "PURPOSE", "AGE", "EXPIRES IN", "READY", "DRIFT", "IMAGE", "DC", "GROUPS", "BASE", "STATE", "URL");
            foreach (var r in records)
            {
                var ready = health.TryGetValue(r.Name, out var h) ? $"{h.Ready}/{h.Desired}" : "-";
                table.Add(
                    r.Name, r.Owner, r.Purpose, Span(now - r.CreatedAt), r.Expires <= now ? "expired" : Span(r.Expires - now), ready, drift.GetValueOrDefault(r.Name, "-"),
                    r.Image ?? "production's", string.Join(",", r.Datacenters), string.Join(",", r.Groups),
                    (r.Base == EnvironmentBase.Follow ? "follows" : "pinned") + (behind.GetValueOrDefault(r.Name) is { Count: > 0 } ? ", behind" : string.Empty),
                    r.Creating is not null ? "creating" : r.Sleeping is null ? "awake" : "asleep",
                    EnvironmentScope.Urls(repoSession.Model, r) is { Count: > 0 } urls ? urls[0].Url + (urls.Count > 1 ? $" (+{urls.Count - 1})" : string.Empty) : "-");
            }

            writer.Write(records.Count == 0 ? "no environments\n" : table.ToString());
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildShow()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("text", "json");
        var noHealth = new Option<bool>("--no-health") { Description = "Do not ask the clusters whether it is behind the repo (the record only)" };
        var command = new Command("show", "One environment's record, backends, how far it is behind the repo, and history") { name, repo, state, output, noHealth };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = session.OpenState(parse.GetValue(state));
            await using var _ = store;
            var environments = new EnvironmentStore(store, session.Model.Project, TimeProvider.System);
            var (record, _) = await environments.GetAsync(parse.GetValue(name)!, ct) ?? throw new Core.Diagnostics.UserInputException($"there is no environment '{parse.GetValue(name)}'");
            var history = await environments.HistoryAsync(record.Name, ct);
            IReadOnlyList<string> behind = [];
            if (!parse.GetValue(noHealth))
            {
                await using var deploySession = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, Selection(record), ct, readState: false);
                behind = await deploySession.Environments().BehindAsync(record, ct);
            }

            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                var doc = JsonNode.Parse(record.ToJson())!.AsObject();
                doc["behind"] = new JsonArray([.. behind.Select(b => (JsonNode)b)]);
                WithUrls(doc, EnvironmentScope.Urls(session.Model, record));
                if (EnvironmentScope.Backends(session.Model, record) is { } listed)
                {
                    doc["backends"] = new JsonObject([.. listed.Items.Select(i => KeyValuePair.Create(i.Production.Name, (JsonNode?)i.Source.ToString()))]);
                }

                doc["history"] = new JsonArray([.. history.Select(h => (JsonNode)new JsonObject { ["at"] = When(h.At), ["actor"] = h.Actor, ["what"] = h.What, ["forced"] = h.Forced })]);
                writer.WriteLine(KubeSerializer.ToJson(doc));
                return ExitCodes.Success;
            }

            writer.WriteLine($"environment {record.Name}: {record.Purpose}, owned by {FreeText.Printable(record.Owner)}");
            writer.WriteLine($"  description: {(record.Description.Length == 0 ? "-" : FreeText.Printable(record.Description))}");
            foreach (var link in record.Links)
            {
                writer.WriteLine($"  link: {FreeText.Printable(link)}");
            }

            writer.WriteLine($"  created by {record.CreatedBy} at {When(record.CreatedAt)}; expires {When(record.Expires)}");
            writer.WriteLine($"  base: {(record.Base == EnvironmentBase.Follow ? "follows production" : "pinned (" + record.PinnedRevision + ")")}; image: {record.Image ?? "production's"}");
            writer.WriteLine($"  namespaces: {string.Join(", ", record.Datacenters.SelectMany(dc => EnvironmentScope.Namespaces(session.Model, record).Select(g => $"{dc}/{EnvironmentNames.Namespace(record.Name, g)}")))}");
            foreach (var (group, url) in EnvironmentScope.Urls(session.Model, record))
            {
                writer.WriteLine($"  url ({group}): {url}");
            }

            if (record.Sources.Count > 0)
            {
                writer.WriteLine($"  built from: {string.Join(", ", record.Sources)} (rebuilt by every refresh)");
            }

            if (EnvironmentScope.Backends(session.Model, record) is { } backends)
            {
                writer.WriteLine($"  backends: {string.Join(", ", backends.Items.Select(i => $"{i.Production.Name} {i.Source}"))}");
                foreach (var shared in backends.FromProduction)
                {
                    writer.WriteLine($"  WARNING: production's {shared.Production.Name} is shared read-only: this environment is not isolated from it");
                }
            }

            foreach (var line in behind)
            {
                writer.WriteLine($"  behind: {line}");
            }

            foreach (var h in history)
            {
                writer.WriteLine($"  {When(h.At)} {h.Actor}: {h.What}{(h.Forced ? " (forced)" : string.Empty)}");
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildDelete()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var force = new Option<bool>("--force") { Description = "Delete someone else's environment (recorded with your name)" };
        var yes = new Option<bool>("--yes", "-y") { Description = "Delete without asking (required when stdin is not a terminal)" };
        var actor = CommonOptions.Actor();
        var command = new Command("delete", "Delete an environment: its namespaces (and everything in them), then its record") { name, repo, state, force, yes, actor };
        command.SetAction(async (parse, ct) =>
        {
            var record = await OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            if (!parse.GetValue(yes))
            {
                if (!env.Interactive)
                {
                    throw new Core.Diagnostics.UserInputException($"stdin is not a terminal, so nobody can confirm: pass --yes to delete environment {record.Name}");
                }

                console.Profile.Out.Writer.Write($"Delete environment {record.Name} ({FreeText.Printable(record.Owner)}'s) and everything in its namespaces? [y/N] ");
                console.Profile.Out.Writer.Flush();
                if ((await env.Input.ReadLineAsync(ct))?.Trim() is not ("y" or "Y" or "yes"))
                {
                    error.WriteLine("capstan: not confirmed; nothing was deleted");
                    return ExitCodes.UserError;
                }
            }

            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, Selection(record), ct, readState: false);
            var service = session.Environments();
            await service.DeleteAsync(record.Name, session.Repo.Actor(parse.GetValue(actor)), parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine($"environment {record.Name} is deleted: its namespaces are gone");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The trees of <c>--source VERSION=DIR</c> and <c>--config DIR</c>, as absolute paths (<c>config=DIR</c> for the config tree).</summary>
    private List<string> SourceTrees(string[] sources, string? config)
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
    private async Task RebuildAsync(DeploySession session, IEnumerable<EnvironmentRecord> records, string actor, bool force, CancellationToken ct)
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
    private void WarnOfProduction(EnvironmentBackends? backends)
    {
        foreach (var shared in backends?.FromProduction ?? [])
        {
            error.WriteLine($"capstan: WARNING: environment {backends!.Environment} uses production's {shared.Production.Name} ({Backend.KindName(shared.Production.Kind)}) read-only, as its class allows: it is not isolated from it");
        }
    }

    /// <summary>Progress as one line per event on stderr (stdout stays the result).</summary>
    private sealed class ProgressLines(TextWriter writer) : IDeployObserver
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

    private void Print(bool json, EnvironmentRecord record, string text, IReadOnlyList<(string Group, string Url)> urls) =>
        console.Profile.Out.Writer.WriteLine(json ? KubeSerializer.ToJson(WithUrls(JsonNode.Parse(record.ToJson())!.AsObject(), urls)) : text);

    /// <summary>A record's JSON with its URLs by group.</summary>
    private static JsonObject WithUrls(JsonObject doc, IReadOnlyList<(string Group, string Url)> urls)
    {
        doc["urls"] = new JsonObject([.. urls.Select(u => KeyValuePair.Create(u.Group, (JsonNode?)u.Url))]);
        return doc;
    }

    private static string When(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private static string Span(TimeSpan span) =>
        span.TotalDays >= 1 ? $"{(int)span.TotalDays}d{span.Hours}h" : span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes}m" : $"{Math.Max(0, (int)span.TotalMinutes)}m";
}
