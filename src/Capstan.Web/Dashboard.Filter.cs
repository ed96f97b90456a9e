using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Http;

using Microsoft.Extensions.Logging;

namespace Capstan.Web;

/// <content>What every request passes first: the Host check, security headers, the body limit, and the last-resort 500.</content>
public sealed partial class Dashboard
{
    /// <summary>
    /// Security headers on everything, the server's own time of every response (Server-Timing), a Host check against
    /// DNS rebinding while serving on loopback, and a plain 500 (the cause on stderr) for anything unexpected.
    /// </summary>
    private async Task FilterAsync(HttpContext context, RequestDelegate next)
    {
        var started = Stopwatch.GetTimestamp();
        if (IPAddress.IsLoopback(_options.Listen.Address) && !LoopbackHost(context.Request.Host.Host))
        {
            // A page of another site whose name was rebound to 127.0.0.1 arrives with its own name as Host.
            context.Response.StatusCode = 421;
            await context.Response.WriteAsync("this dashboard serves on loopback and answers only to localhost, 127.0.0.1 and [::1]\n");
            return;
        }

        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = Csp;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        // same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its forms, and the origin check needs it.
        headers["Referrer-Policy"] = "same-origin";
        context.Response.OnStarting(() =>
        {
            context.Response.Headers["Server-Timing"] = $"app;dur={Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0}";
            return Task.CompletedTask;
        });
        if (context.Request.ContentLength > MaxBodyBytes || !await BufferChunkedBodyAsync(context))
        {
            await Problem(context, 413, $"the request body is larger than this server takes ({MaxBodyBytes / 1024} KiB)");
            return;
        }

        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413 && !context.Response.HasStarted)
        {
            // A body sent without a length that grew past the limit: the client's mistake, not the server's.
            context.Response.Clear();
            await Problem(context, 413, $"the request body is larger than this server takes ({MaxBodyBytes / 1024} KiB)");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            _log.LogError(ex, "{Method} {Path}", context.Request.Method, context.Request.Path.Value);
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await Problem(context, 500, "the server failed to answer this request; its log says why");
            }
        }
    }

    /// <summary>
    /// A body sent without a length is read here, whole, before any handler sees it: false when it is larger than
    /// <see cref="MaxBodyBytes"/>. The rest of a large one is still read (up to Kestrel's cap), so that the client,
    /// done sending, reads the 413 instead of a connection closed under it.
    /// </summary>
    private static async Task<bool> BufferChunkedBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength is not null || context.Request.Headers.TransferEncoding.Count == 0)
        {
            return true;
        }

        var buffered = new MemoryStream();
        var chunk = new byte[16 * 1024];
        var tooLarge = false;
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                tooLarge |= buffered.Length + read > MaxBodyBytes;
                if (!tooLarge)
                {
                    buffered.Write(chunk, 0, read);
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413)
        {
            tooLarge = true;
        }

        if (tooLarge)
        {
            return false;
        }

        buffered.Position = 0;
        context.Request.Body = buffered;
        context.Request.ContentLength = buffered.Length;
        context.Response.RegisterForDispose(buffered);
        return true;
    }

    private static bool LoopbackHost(string host) =>
        host is "localhost" or "[::1]" or "::1" || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
