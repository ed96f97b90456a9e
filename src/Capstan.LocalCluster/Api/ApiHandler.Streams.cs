using System.Buffers;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Runtime.CompilerServices;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Schema;
using Capstan.LocalCluster.Store;
using Microsoft.AspNetCore.Http;

namespace Capstan.LocalCluster.Api;

/// <content>Lists and watch streams.</content>
internal sealed partial class ApiHandler
{
    private async Task ListAsync(HttpContext context, ResourceType type, string? ns)
    {
        var labels = LabelQuery.Parse(context.Request.Query["labelSelector"].FirstOrDefault());
        var fields = FieldQuery(context.Request.Query["fieldSelector"].FirstOrDefault());
        var (items, rv) = store.ListShared(type, ns, labels, fields);
        if (TablePrinter.Wanted(context.Request.Headers.Accept.ToString()))
        {
            await WriteAsync(context, 200, TablePrinter.Table(type, items, rv, context.Request.Query["includeObject"].FirstOrDefault(), store.Clock.GetUtcNow()));
            return;
        }

        if (type.Custom is null && Protobuf.Preferred(context.Request.Headers.Accept.ToString()) && ApiSchema.Default.ForKind(type.Kind) is { } schemaType)
        {
            var messages = items.Select(item => MessageOf(schemaType, item)).ToList();
            if (messages.TrueForAll(m => m is not null))
            {
                context.Response.StatusCode = 200;
                context.Response.ContentType = Protobuf.MediaType;
                await context.Response.Body.WriteAsync(Protobuf.EncodeList(type.ApiVersion, type.Kind + "List", rv.ToString(CultureInfo.InvariantCulture), messages!), context.RequestAborted);
                return;
            }
        }

        // Written item by item: stored objects are shared, not copied, and a JSON node can only have one parent. Their
        // UTF-8 is kept with them (they never change once stored), so a list that is read again costs a copy.
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        var body = context.Response.BodyWriter;
        Write(body, $"{{\"kind\":\"{type.Kind}List\",\"apiVersion\":\"{type.ApiVersion}\",\"metadata\":{{\"resourceVersion\":\"{rv.ToString(CultureInfo.InvariantCulture)}\"}},\"items\":[");
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                Write(body, ",");
            }

            body.Write(Utf8Of(items[i]));
            if (body.UnflushedBytes > 64 * 1024)
            {
                await body.FlushAsync(context.RequestAborted);
            }
        }

        Write(body, "]}");
        await body.FlushAsync(context.RequestAborted);
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<JsonObject, byte[]> Serialized = [];

    /// <summary>The UTF-8 JSON of a stored object, serialized once.</summary>
    private static byte[] Utf8Of(JsonObject stored) => Serialized.GetValue(stored, o => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(o));

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<JsonObject, StrongBox<byte[]?>> Messages = [];

    /// <summary>The protobuf message of a stored object, encoded once; null when it has no protobuf form.</summary>
    private static byte[]? MessageOf(SchemaType type, JsonObject stored) => Messages.GetValue(stored, o => new StrongBox<byte[]?>(Protobuf.TryMessage(type, o))).Value;

    /// <summary>
    /// An object in the protobuf envelope, its message encoded once (a stored object never changes); null when it has
    /// no protobuf form.
    /// </summary>
    private static byte[]? EnvelopeOf(JsonObject obj) =>
        obj["kind"] is JsonValue kind && kind.TryGetValue<string>(out var name) && BuiltIn(obj["apiVersion"]?.ToString())
            && ApiSchema.Default.ForKind(name) is { } type && MessageOf(type, obj) is { } message
            ? Protobuf.Envelope(obj["apiVersion"]?.ToString() ?? string.Empty, name, message)
            : null;

    /// <summary>
    /// True for an apiVersion of Kubernetes' own groups (the core group, a group without a dot, or one under
    /// <c>k8s.io</c>): a custom resource is never written in protobuf, even when its kind's name is a built-in one.
    /// </summary>
    private static bool BuiltIn(string? apiVersion) =>
        apiVersion is not null && (apiVersion.IndexOf('/', StringComparison.Ordinal) is var slash && slash < 0
            || !apiVersion[..slash].Contains('.', StringComparison.Ordinal) || apiVersion[..slash].EndsWith(".k8s.io", StringComparison.Ordinal));

    private static void Write(System.IO.Pipelines.PipeWriter writer, string text) => writer.Write(System.Text.Encoding.UTF8.GetBytes(text));

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns)
    {
        var query = context.Request.Query;
        var labels = LabelQuery.Parse(query["labelSelector"].FirstOrDefault());
        var fields = FieldQuery(query["fieldSelector"].FirstOrDefault());
        var from = long.TryParse(query["resourceVersion"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var rv) ? rv : 0;
        var bookmarks = IsTrue(query["allowWatchBookmarks"].FirstOrDefault());
        var table = TablePrinter.Wanted(context.Request.Headers.Accept.ToString());
        var protobuf = !table && type.Custom is null && Protobuf.Preferred(context.Request.Headers.Accept.ToString());
        var includeObject = query["includeObject"].FirstOrDefault();
        var timeout = int.TryParse(query["timeoutSeconds"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t > 0 ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);

        var cut = faults.WatchCut;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, cut);
        cts.CancelAfter(timeout);
        var reader = store.Watch(type, ns, from, cts.Token);
        context.Response.StatusCode = 200;
        context.Response.ContentType = protobuf ? Protobuf.WatchMediaType : "application/json";
        await context.Response.Body.FlushAsync(cts.Token);
        var lastRv = Math.Max(from, store.ResourceVersion);
        try
        {
            while (!cts.IsCancellationRequested)
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
                if (bookmarks)
                {
                    wait.CancelAfter(timing.Bookmark);
                }

                StoreEvent e;
                try
                {
                    e = await reader.ReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cts.IsCancellationRequested)
                {
                    await WriteEventAsync(context, protobuf, "BOOKMARK", new JsonObject
                    {
                        ["kind"] = type.Kind,
                        ["apiVersion"] = type.ApiVersion,
                        ["metadata"] = new JsonObject { ["resourceVersion"] = Math.Max(lastRv, store.ResourceVersion).ToString(CultureInfo.InvariantCulture) },
                    }, cts.Token);
                    continue;
                }

                lastRv = e.ResourceVersion;
                if (labels.Matches(e.Object) && (fields?.Invoke(e.Object) ?? true))
                {
                    // A watch for a Table gets each object as a one-row Table (kubectl get -w).
                    var item = table ? TablePrinter.Table(type, [e.Object], e.ResourceVersion, includeObject, store.Clock.GetUtcNow()) : e.Object;
                    await WriteEventAsync(context, protobuf, e.Type, item, cts.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (System.Threading.Channels.ChannelClosedException)
        {
        }

        if (cut.IsCancellationRequested)
        {
            // Cut by a fault: the connection drops mid-stream, with no clean end of the response.
            context.Abort();
        }
    }

    /// <summary>
    /// One watch event: a JSON line, or a protobuf frame (an object without a protobuf form, which a stored object of
    /// a served kind always has, ends the stream with an ERROR event).
    /// </summary>
    private static async Task WriteEventAsync(HttpContext context, bool protobuf, string type, JsonObject obj, CancellationToken cancellationToken)
    {
        if (!protobuf)
        {
            await WriteLineAsync(context, new JsonObject { ["type"] = type, ["object"] = obj }, cancellationToken);
            return;
        }

        var encoded = EnvelopeOf(obj);
        var frame = encoded is null
            ? Protobuf.WatchFrame("ERROR", Protobuf.TryEncode(new ApiError(500, "InternalError", $"{obj["kind"]} {obj.Kube.Name} has no protobuf form; watch with Accept: application/json").ToStatus())!)
            : Protobuf.WatchFrame(type, encoded);
        await context.Response.Body.WriteAsync(frame, cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
        if (encoded is null)
        {
            throw new OperationCanceledException();
        }
    }

    private static Func<JsonObject, bool>? FieldQuery(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var tests = new List<Func<JsonObject, bool>>();
        foreach (var term in text.Split(','))
        {
            var negate = term.Contains("!=", StringComparison.Ordinal);
            var parts = term.Split(negate ? "!=" : term.Contains("==", StringComparison.Ordinal) ? "==" : "=", 2);
            if (parts.Length != 2)
            {
                throw ApiError.BadRequest($"invalid field selector \"{text}\"");
            }

            var (field, value) = (parts[0].Trim(), parts[1].Trim());
            Func<JsonObject, string?> get = field switch
            {
                "metadata.name" => o => o["metadata"]?["name"]?.GetValue<string>(),
                "metadata.namespace" => o => o.Kube.Namespace,
                "status.phase" => o => o["status"]?["phase"]?.GetValue<string>(),
                "spec.nodeName" => o => o["spec"]?["nodeName"]?.GetValue<string>(),
                "involvedObject.kind" or "involvedObject.namespace" or "involvedObject.name" or "involvedObject.uid" or "involvedObject.apiVersion" or "reason" or "type" or "source"
                    => o => (field == "source" ? o["source"]?["component"] : field.StartsWith("involvedObject.", StringComparison.Ordinal) ? o["involvedObject"]?[field["involvedObject.".Length..]] : o[field])?.GetValue<string>(),
                _ => throw ApiError.BadRequest($"field label not supported: {field}"),
            };
            tests.Add(o => (get(o) == value) != negate);
        }

        return o => tests.TrueForAll(t => t(o));
    }
}
