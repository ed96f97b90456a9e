using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan state get | set | init | history | watch</c>: the dynamic state in the repo's state store.</summary>
internal sealed class StateCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    private static readonly string[] SetKeys = ["primary-dc", "read-only", "maintenance"];

    public Command Build()
    {
        var command = new Command("state", "Read and change the dynamic state: primary_dc, read_only per datacenter, maintenance_enabled")
        {
            BuildGet(), BuildSet(), BuildInit(), BuildHistory(), BuildWatch(),
        };
        return command;
    }

    private Command BuildGet()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("table", "json");
        var noLive = new Option<bool>("--no-live") { Description = "Do not read the clusters (which flags a state they do not reflect)" };
        var command = new Command("get", "Show the whole state, flagging a nonsense combination and a state the clusters do not reflect") { repo, environment, state, output, noLive };
        command.SetAction(async (parse, ct) =>
        {
            var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);

            // An empty store shows the repo's state-seed, marked as not written; a store that lost its state is an error.
            var current = await session.ReadStateAsync(null, parse.GetValue(state), ct);
            var (store, service) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var read = await service.ReadAsync(ct);
                var doc = read.Document ?? new StateDocument(current, 0, new ChangeStamp("-", DateTimeOffset.UnixEpoch, "-"));
                var unwritten = read.Document is null
                    ? $"never: the store is empty; this is the state-seed {session.StateFromUnwrittenSeed}, which the first deploy or 'capstan state init' writes"
                    : null;

                var problems = doc.State.Incoherences();
                IReadOnlyList<string> mismatches = [];
                if (!parse.GetValue(noLive))
                {
                    await using var live = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new Core.Rendering.RenderSelection(), ct, readState: false, testEnvironment: parse.GetValue(environment));
                    mismatches = await MaintenanceReflection.MismatchesAsync(live.Repo.Model, live.Clusters, doc.State, ct);
                }

                if (parse.GetValue(output) == "json")
                {
                    var node = StateJson.StateNode(doc.State);
                    node["sequence"] = doc.Sequence;
                    node["updated"] = unwritten is null ? new JsonObject { ["actor"] = doc.Updated.Actor, ["at"] = Stamp(doc.Updated.At), ["reason"] = doc.Updated.Reason } : null;
                    node["seed"] = session.StateFromUnwrittenSeed;
                    node["store"] = store.Address;
                    node["incoherences"] = new JsonArray([.. problems.Select(p => (JsonNode)JsonValue.Create(p))]);
                    node["clusterMismatches"] = parse.GetValue(noLive) ? null : new JsonArray([.. mismatches.Select(p => (JsonNode)JsonValue.Create(p))]);
                    console.Profile.Out.Writer.WriteLine(KubeSerializer.ToJson(node));
                }
                else
                {
                    var table = new PlainTable("KEY", "VALUE");
                    table.Add("primary_dc", doc.State.PrimaryDc);
                    foreach (var (dc, reason) in doc.State.ReadOnly)
                    {
                        table.Add($"read_only.{dc}", reason is null ? "false" : $"\"{reason}\"");
                    }

                    table.Add("maintenance_enabled", doc.State.MaintenanceEnabled ? "true" : $"false ({doc.State.MaintenanceReason})");
                    table.Add("updated", unwritten ?? $"{Stamp(doc.Updated.At)} by {doc.Updated.Actor}: {doc.Updated.Reason}");
                    table.Add("store", store.Address);
                    console.Profile.Out.Writer.Write(table.ToString());
                }

                foreach (var problem in problems)
                {
                    error.WriteLine($"capstan: warning: nonsense state: {problem}");
                }

                foreach (var mismatch in mismatches)
                {
                    error.WriteLine($"capstan: warning: the clusters do not reflect the state: {mismatch}");
                }

                return ExitCodes.Success;
            }
        });
        return command;
    }

    private Command BuildSet()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var force = new Option<bool>("--force") { Description = "Write even a nonsense state, or a switchover's step on its own (primary-dc, or read-only of the primary): recorded as forced and announced" };
        var key = new Argument<string>("key") { Description = $"What to set: {string.Join(", ", SetKeys)}" };
        var values = new Argument<string[]>("value")
        {
            Description = "primary-dc DC | read-only DC REASON|false | maintenance true|false",
            Arity = new ArgumentArity(1, 2),
        };
        var command = new Command("set", "Change one value of the state (compare-and-swap; recorded in the history)") { key, values, repo, environment, state, reason, actor, force };
        command.SetAction(async (parse, ct) =>
        {
            var change = ParseChange(parse.GetValue(key)!, parse.GetValue(values)!);
            return await WriteAsync(parse, repo, environment, state, reason, actor, change, parse.GetValue(force), ct);
        });
        return command;
    }

    private Command BuildInit()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var primary = new Option<string>("--primary-dc") { Description = "The primary datacenter", Required = true, HelpName = "DC" };
        var command = new Command("init", "Write the first state into an empty store: the primary datacenter, every datacenter read-write, maintenance enabled")
        {
            primary, repo, environment, state, reason, actor,
        };
        command.SetAction(async (parse, ct) =>
        {
            var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);
            var change = new StateChange.Initialize(StateRules.Fresh(parse.GetValue(primary)!, [.. session.Model.DatacenterNames]));
            return await WriteAsync(parse, repo, environment, state, reason, actor, change, force: false, ct);
        });
        return command;
    }

    private Command BuildHistory()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("table", "json");
        var limit = new Option<int>("--limit") { Description = "Show only the last N changes", DefaultValueFactory = _ => 50, HelpName = "N" };
        var command = new Command("history", "Every change of the state: who, when, why and what changed") { repo, environment, state, limit, output };
        command.SetAction(async (parse, ct) =>
        {
            var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);
            var (store, service) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var entries = (await service.HistoryAsync(ct)).TakeLast(Math.Max(1, parse.GetValue(limit))).ToList();
                if (parse.GetValue(output) == "json")
                {
                    var array = new JsonArray([.. entries.Select(e => JsonNode.Parse(StateJson.Write(e)))]);
                    console.Profile.Out.Writer.WriteLine(KubeSerializer.ToJson(array));
                    return ExitCodes.Success;
                }

                var table = new PlainTable("SEQ", "AT", "ACTOR", "CHANGE", "REASON");
                foreach (var e in entries)
                {
                    table.Add(e.Sequence.ToString(CultureInfo.InvariantCulture), Stamp(e.Stamp.At), e.Stamp.Actor, e.Change + (e.Forced ? " (forced)" : string.Empty), e.Stamp.Reason);
                }

                console.Profile.Out.Writer.Write(table.ToString());
                return ExitCodes.Success;
            }
        });
        return command;
    }

    private Command BuildWatch()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("watch", "Print each change of the state as it happens, until interrupted") { repo, environment, state, output };
        command.SetAction(async (parse, ct) =>
        {
            var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);
            var (store, service) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var previous = (await service.ReadAsync(ct)).State;
                var writer = console.Profile.Out.Writer;
                error.WriteLine($"capstan: watching {store.Address} (Ctrl-C to stop)");
                try
                {
                    await foreach (var (doc, revision) in service.WatchAsync(ct))
                    {
                        if (parse.GetValue(output) == "json")
                        {
                            var node = StateJson.StateNode(doc.State);
                            node["revision"] = revision;
                            node["actor"] = doc.Updated.Actor;
                            node["at"] = Stamp(doc.Updated.At);
                            node["reason"] = doc.Updated.Reason;
                            writer.WriteLine(node.ToJsonString());
                        }
                        else
                        {
                            var changes = StateRules.Differences(previous, doc.State);
                            writer.WriteLine(FreeText.Printable($"{Stamp(doc.Updated.At)}  {doc.Updated.Actor}  {string.Join(", ", changes)}  ({doc.Updated.Reason})"));
                        }

                        writer.Flush();
                        previous = doc.State;
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                }

                return ExitCodes.Success;
            }
        });
        return command;
    }

    private async Task<int> WriteAsync(
        ParseResult parse, Option<string?> repo, Option<string?> environment, Option<string?> state, Option<string?> reason, Option<string?> actor,
        StateChange change, bool force, CancellationToken ct)
    {
        var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);
        var actorName = session.Actor(parse.GetValue(actor));
        var (write, address) = await StateWriter.WriteAsync(session, parse.GetValue(state), actorName, parse.GetValue(reason), change, force, ct);
        console.Profile.Out.Writer.WriteLine(StateWriter.Describe(write, actorName, address));
        return ExitCodes.Success;
    }

    private static StateChange ParseChange(string key, string[] values)
    {
        switch (key)
        {
            case "primary-dc" when values.Length == 1:
                return new StateChange.SetPrimaryDc(values[0]);
            case "read-only" when values.Length == 2:
                return values[1] switch
                {
                    "false" => new StateChange.SetReadOnly(values[0], null),
                    "true" => throw new UserInputException("read-only takes the reason itself (a string), or false; not true"),
                    var r => new StateChange.SetReadOnly(values[0], r),
                };
            case "maintenance" when values.Length == 1:
                return values[0] switch
                {
                    "true" => new StateChange.SetMaintenance(true),
                    "false" => new StateChange.SetMaintenance(false),
                    var other => throw new UserInputException($"maintenance must be true or false, not '{other}'"),
                };
            case "primary-dc" or "read-only" or "maintenance":
                throw new UserInputException("usage: capstan state set primary-dc DC | read-only DC REASON|false | maintenance true|false");
            default:
                throw new UserInputException($"unknown state key '{key}' (allowed: {string.Join(", ", SetKeys)})");
        }
    }

    internal static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>Writes a change of the state and reports it; shared by <c>state</c> and <c>maintenance</c>.</summary>
internal static class StateWriter
{
    /// <summary>The line that reports a write.</summary>
    public static string Describe(StateWrite write, string actor, string address) => write.Written
        ? $"{write.Description} (change {write.Document.Sequence} by {actor}, in {address})"
        : $"{write.Description}: nothing written";

    /// <summary>Applies a change (initialising an empty store from the seed first) and returns it with the store's address.</summary>
    public static async Task<(StateWrite Write, string Address)> WriteAsync(
        RepoSession session, string? stateOption, string actor, string? reason, StateChange change, bool force, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new UserInputException("--reason is required: every change of the state records why");
        }

        if (change is not StateChange.Initialize)
        {
            // An empty store is initialised from the repo's state-seed first, but only for a change the rules accept:
            // bad input writes nothing, not even the seed.
            var current = await session.ReadStateAsync(null, stateOption, ct);
            if (session.StateFromUnwrittenSeed is not null)
            {
                DynamicStateService.CheckByHand(current, change, force, [.. session.Model.DatacenterNames]);
                var outcome = StateRules.Apply(current, change, [.. session.Model.DatacenterNames], reason, force);
                if (!outcome.Accepted)
                {
                    throw new StateRefusedException(outcome.Refusal!);
                }

                await session.WriteUnwrittenSeedAsync(stateOption, ct);
            }
        }

        var (store, service) = session.OpenState(stateOption);
        await using (store)
        {
            var write = await service.ChangeAsync(change, actor, reason, force, ct, byHand: true);
            if (write.Forced)
            {
                var text = $"Forced a change of the dynamic state by hand: {write.Description} ({reason})";
                var fields = new JsonObject { ["change"] = write.Description, ["sequence"] = write.Document.Sequence, ["reason"] = reason };
                foreach (var problem in await Announcer.For(session.Model, TimeProvider.System).AnnounceAsync(new Announcement("state.forced", actor, text, TimeProvider.System.GetUtcNow(), fields), ct))
                {
                    session.Env.Error.WriteLine("capstan: warning: " + problem);
                }
            }

            return (write, store.Address);
        }
    }
}
