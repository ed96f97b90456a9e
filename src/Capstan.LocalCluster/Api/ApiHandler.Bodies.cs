using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.LocalCluster.Schema;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <content>Request bodies: JSON, YAML or protobuf, within kube-apiserver's size limit.</content>
internal sealed partial class ApiHandler
{
    private static async Task<JsonObject> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentType?.Contains("cbor", StringComparison.Ordinal) == true)
        {
            // JSON, YAML and protobuf bodies are understood; clients that prefer CBOR fall back to JSON on 415.
            throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json");
        }

        using var body = await ReadBodyBytesAsync(context);
        if (Protobuf.IsProtobuf(context.Request.ContentType))
        {
            return Protobuf.Decode(body.GetBuffer(), (int)body.Length);
        }

        var text = Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
        if (text.TrimStart().StartsWith('{'))
        {
            try
            {
                return JsonNode.Parse(text) as JsonObject ?? throw ApiError.BadRequest("the body must be an object");
            }
            catch (JsonException ex)
            {
                throw ApiError.BadRequest("the body is not valid JSON: " + ex.Message);
            }
        }

        var diagnostics = new DiagnosticBag();
        var node = YamlReader.ReadSingle(text, "body", diagnostics);
        if (diagnostics.HasErrors || node is not ValueMap)
        {
            throw ApiError.BadRequest("the body is not a YAML or JSON object" + (diagnostics.HasErrors ? ": " + diagnostics.Items[0].Message : string.Empty));
        }

        return (JsonObject)ValueNodeJson.ToJson(node)!;
    }

    /// <summary>The most a request body may hold, as kube-apiserver's default (3 MiB).</summary>
    internal const int MaxRequestBodyBytes = 3 * 1024 * 1024;

    /// <summary>The body as text, refused with kube-apiserver's 413 past <see cref="MaxRequestBodyBytes"/>, declared or not.</summary>
    internal static async Task<string> ReadBodyTextAsync(HttpContext context)
    {
        using var body = await ReadBodyBytesAsync(context);
        return Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
    }

    private static async Task<MemoryStream> ReadBodyBytesAsync(HttpContext context)
    {
        var tooLarge = new ApiError(413, "RequestEntityTooLarge", $"Request entity too large: limit is {MaxRequestBodyBytes}");
        if (context.Request.ContentLength > MaxRequestBodyBytes)
        {
            throw tooLarge;
        }

        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxRequestBodyBytes)
            {
                await buffer.DisposeAsync();
                throw tooLarge;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer;
    }
}
