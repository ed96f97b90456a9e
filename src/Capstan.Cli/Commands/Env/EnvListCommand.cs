using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env list</c>: the environments: owner, purpose, age, time left, health (ready/desired), drift count, image, datacenters, groups, followed or pinned.</summary>
internal sealed class EnvListCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
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
                    var doc = EnvCommand.WithUrls(JsonNode.Parse(r.ToJson())!.AsObject(), EnvironmentScope.Urls(repoSession.Model, r));
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
                    r.Name, r.Owner, r.Purpose, EnvCommand.Span(now - r.CreatedAt), r.Expires <= now ? "expired" : EnvCommand.Span(r.Expires - now), ready, drift.GetValueOrDefault(r.Name, "-"),
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
}
