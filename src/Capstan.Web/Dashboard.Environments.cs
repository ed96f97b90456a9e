using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Deploy;

namespace Capstan.Web;

/// <content>The environment actions of the dashboard and its API: create, extend, sleep, wake and delete, through the same EnvironmentService as the CLI.</content>
public sealed partial class Dashboard
{
    private async Task<JsonObject> CreateAsync(Fields form, string actor, CancellationToken cancellationToken)
    {
        var production = await _data.State.ReadRequiredAsync(cancellationToken);
        var name = form.One("name") ?? throw new UserInputException("an environment needs a name");
        var request = new EnvironmentRequest(
            name, form.One("owner"), form.One("purpose") ?? throw new UserInputException("an environment needs a purpose"), form.One("description") ?? string.Empty,
            form.All("link"), EnvironmentPolicy.ParseDuration(form.One("expires") ?? throw new UserInputException("an environment needs an expiry (such as 7d)")),
            form.Flag("pin"), form.One("image"), form.All("dc") is { Count: > 0 } dcs ? dcs : [production.PrimaryDc], form.All("group"), [], actor);
        var (record, _) = await _data.Environments.CreateAsync(request, production, SilentObserver.Instance, cancellationToken);
        return JsonNode.Parse(record.ToJson())!.AsObject();
    }

    private async Task<JsonObject> ExtendAsync(string name, Fields form, string actor, CancellationToken cancellationToken)
    {
        var by = EnvironmentPolicy.ParseDuration(form.One("by") ?? throw new UserInputException("extend needs a duration (such as 7d)"));
        return JsonNode.Parse((await _data.Environments.ExtendAsync(name, by, actor, form.Flag("force"), cancellationToken)).ToJson())!.AsObject();
    }

    private async Task<JsonObject> SleepAsync(string name, Fields form, string actor, CancellationToken cancellationToken) =>
        JsonNode.Parse((await _data.Environments.SleepAsync(name, actor, form.Flag("force"), cancellationToken)).ToJson())!.AsObject();

    private async Task<JsonObject> WakeAsync(string name, Fields form, string actor, CancellationToken cancellationToken) =>
        JsonNode.Parse((await _data.Environments.WakeAsync(name, actor, form.Flag("force"), cancellationToken)).ToJson())!.AsObject();

    private async Task<JsonObject> DeleteAsync(string name, Fields form, string actor, CancellationToken cancellationToken)
    {
        await _data.Environments.DeleteAsync(name, actor, form.Flag("force"), cancellationToken);
        return new JsonObject { ["deleted"] = name };
    }
}
