using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <content>The /capstan/* control endpoints: faults, images.</content>
internal sealed partial class ApiHandler
{
    private async Task FaultsAsync(HttpContext context)
    {
        switch (context.Request.Method)
        {
            case "GET":
                await WriteAsync(context, 200, faults.Describe());
                return;
            case "POST":
                faults.Add(await ReadBodyAsync(context));
                await WriteAsync(context, 200, faults.Describe());
                return;
            case "DELETE":
                faults.Clear();
                await WriteAsync(context, 200, faults.Describe());
                return;
            default:
                throw new ApiError(405, "MethodNotAllowed", "GET, POST or DELETE");
        }
    }

    private async Task ImagesAsync(HttpContext context)
    {
        if (context.Request.Method == "POST")
        {
            var body = await ReadBodyAsync(context);
            images.Set(body["images"] is JsonArray list ? list.Select(i => i!.GetValue<string>()) : null);
        }

        await WriteAsync(context, 200, images.Describe());
    }
}
