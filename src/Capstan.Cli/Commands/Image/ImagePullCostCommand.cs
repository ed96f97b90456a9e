using System.CommandLine;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image pull-cost</c>: what rolling an image out over another costs each datacenter.</summary>
internal sealed class ImagePullCostCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
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
                await using var store = ImageStores.Open(reference, env.Get);
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
                writer.WriteLine(new System.Text.Json.Nodes.JsonArray([.. estimates.Select(e => (System.Text.Json.Nodes.JsonNode)Capstan.Deploy.Json.PlanJson.PullCost(e))]).ToJsonString());
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
}
