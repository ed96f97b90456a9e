using System.Net;
using System.Reflection;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Capstan.Web.Components;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Capstan.Web;

/// <summary>Where and how the dashboard serves.</summary>
public sealed record DashboardOptions(IPEndPoint Listen, Users Users)
{
    /// <summary>The loopback address on port 8080.</summary>
    public static IPEndPoint DefaultListen { get; } = new(IPAddress.Loopback, 8080);

    /// <summary>Where the server logs what went wrong in it (a request it failed, a stream that stopped); null for nowhere.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// <c>capstan serve</c>: the dashboard and <c>/api/v1</c> of a farm. Reading needs nothing; every change needs a
/// user from the tokens file, as a bearer token or a signed-in browser session whose forms carry its CSRF token.
/// Changes go through the same services as the CLI and are recorded with the user's name.
/// </summary>
public sealed partial class Dashboard : IAsyncDisposable
{
    private const string Csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    /// <summary>The largest request body the dashboard reads (its forms and JSON writes are small).</summary>
    private const int MaxBodyBytes = 64 * 1024;

    private readonly DashboardData _data;
    private readonly DashboardOptions _options;
    private readonly Sessions _sessions;
    private readonly DashboardMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly DeployEventHub _events;
    private readonly ILogger _log;
    private readonly JobBoard _jobs;
    private readonly JobActions _jobActions;

    /// <summary>Renders the pages written as Razor components (encoded by default).</summary>
    private readonly HtmlRenderer _html = new(new ServiceCollection().BuildServiceProvider(), NullLoggerFactory.Instance);
    private WebApplication? _app;

    /// <summary>Cancelled when the server stops: changes run to their end even when the browser that asked leaves.</summary>
    private CancellationToken _stopping;

    private Dashboard(DashboardData data, DashboardOptions options, TimeProvider time)
    {
        _data = data;
        _options = options;
        _time = time;
        _sessions = new Sessions(time);
        _metrics = new DashboardMetrics(data);
        _log = options.Logger ?? NullLogger.Instance;
        _events = new DeployEventHub(data, _log);
        _jobs = new JobBoard(data.Store, data.Model.Project, time, _log);
        _jobActions = new JobActions(data, _jobs, time, _log);
    }

    /// <summary>The address it serves on.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>Starts serving; the returned dashboard stops when disposed.</summary>
    public static async Task<Dashboard> StartAsync(DashboardData data, DashboardOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var dashboard = new Dashboard(data, options, time);
        // Production always: never a developer exception page with a stack trace, whatever the environment says.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Listen);
            // The server's own cap: a larger body is drained up to it, so its sender reads the 413 (see FilterAsync).
            k.Limits.MaxRequestBodySize = 1024 * 1024;
            k.AddServerHeader = false;
        });
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        dashboard._stopping = app.Lifetime.ApplicationStopping;
        app.Use(dashboard.FilterAsync);
        dashboard.Map(app);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync();
            throw new UserInputException($"cannot listen on {options.Listen}: {ex.Message} (choose another with --listen HOST:PORT)");
        }

        dashboard._app = app;
        dashboard.Url = new Uri(app.Urls.First().Replace("[::1]", "127.0.0.1", StringComparison.Ordinal));
        return dashboard;
    }

    /// <summary>Stops serving.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        await _jobs.DisposeAsync();
        await _html.DisposeAsync();
        await _events.DisposeAsync();
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/assets/{name}", Asset);
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await _metrics.ExportAsync(context.Response.Body, context.RequestAborted);
        });

        // The API: the data every page is built from.
        app.MapGet("/api/v1/overview", c => Json(c, _data.OverviewAsync(c.RequestAborted)));
        app.MapGet("/api/v1/releases", c => Json(c, _data.ReleasesAsync(c.RequestAborted)));
        app.MapGet("/api/v1/releases/{dc}/{ns}/{release}", (HttpContext c, string dc, string ns, string release) => Found(c, _data.ReleaseAsync(dc, ns, release, c.RequestAborted)));
        app.MapGet("/api/v1/releases/{dc}/{ns}/{release}/diff", (HttpContext c, string dc, string ns, string release) =>
            Revisions(c, out var from, out var to) ? Found(c, _data.DiffAsync(dc, ns, release, from, to, c.RequestAborted)) : Problem(c, 400, "from and to must be revision numbers"));
        app.MapGet("/api/v1/history", c => Json(c, _data.HistoryAsync(Query(c, "actor"), Query(c, "q"), c.RequestAborted)));
        app.MapGet("/api/v1/deploy", c => Json(c, _data.DeployAsync(c.RequestAborted)));
        app.MapGet("/api/v1/deploy/events", DeployEventsAsync);
        app.MapGet("/api/v1/deploys/{planId}", (HttpContext c, string planId) => Found(c, _data.DeployRecordAsync(planId, c.RequestAborted)));
        app.MapGet("/api/v1/environments", c => Json(c, _data.EnvironmentsAsync(c.RequestAborted)));
        app.MapGet("/api/v1/environments/{name}", (HttpContext c, string name) => Found(c, _data.EnvironmentAsync(name, c.RequestAborted)));
        app.MapGet("/api/v1/train", c => Json(c, _data.TrainAsync(c.RequestAborted)));
        app.MapGet("/api/v1/switchover", c => Found(c, _data.SwitchoverAsync(c.RequestAborted)));
        app.MapPost("/api/v1/environments", c => ApiWriteAsync(c, async (actor, body) => await CreateAsync(Fields.FromJson(body), actor, _stopping)));
        app.MapPost("/api/v1/environments/{name}/extend", (HttpContext c, string name) => ApiWriteAsync(c, async (actor, body) => await ExtendAsync(name, Fields.FromJson(body), actor, _stopping)));
        app.MapPost("/api/v1/environments/{name}/sleep", (HttpContext c, string name) => ApiWriteAsync(c, async (actor, body) => await SleepAsync(name, Fields.FromJson(body), actor, _stopping)));
        app.MapPost("/api/v1/environments/{name}/wake", (HttpContext c, string name) => ApiWriteAsync(c, async (actor, body) => await WakeAsync(name, Fields.FromJson(body), actor, _stopping)));
        app.MapDelete("/api/v1/environments/{name}", (HttpContext c, string name) => ApiWriteAsync(c, async (actor, body) => await DeleteAsync(name, Fields.FromJson(body), actor, _stopping)));

        // The pages.
        app.MapGet("/", async c => await PageAsync<OverviewPage>(c, "Overview", "Overview", new() { ["Data"] = await _data.OverviewAsync(c.RequestAborted) }));
        app.MapGet("/deploy", async c => await PageAsync<DeployPage>(c, "Deploy", "Deploy", new() { ["Data"] = await _data.DeployAsync(c.RequestAborted) }));
        app.MapGet("/deploys/{planId}", async (HttpContext c, string planId) =>
            await (await _data.DeployRecordAsync(planId, c.RequestAborted) is { } record
                ? PageAsync<DeployRecordPage>(c, $"Deploy {planId}", "History", new() { ["Record"] = record })
                : MessageAsync(c, "History", $"No finished deploy '{planId}' is kept.", 404)));
        app.MapGet("/history", async c => await PageAsync<HistoryPage>(c, "History", "History", new() { ["Data"] = await _data.HistoryAsync(Query(c, "actor"), Query(c, "q"), c.RequestAborted) }));
        app.MapGet("/releases/{dc}/{ns}/{release}", async (HttpContext c, string dc, string ns, string release) =>
            await (await _data.ReleaseAsync(dc, ns, release, c.RequestAborted) is { } data
                ? PageAsync<ReleasePage>(c, $"{dc}/{ns}/{release}", "Overview", new() { ["Data"] = data })
                : MessageAsync(c, string.Empty, $"The farm has no release {ns}/{release} in {dc}.", 404)));
        app.MapGet("/releases/{dc}/{ns}/{release}/diff", async (HttpContext c, string dc, string ns, string release) =>
            await (Revisions(c, out var from, out var to) && await _data.DiffAsync(dc, ns, release, from, to, c.RequestAborted) is { } diff
                ? PageAsync<DiffPage>(c, $"{dc}/{ns}/{release}: r{from} → r{to}", "Overview", new() { ["Data"] = diff })
                : MessageAsync(c, string.Empty, "No such release or revisions.", 404)));
        app.MapGet("/environments", async c => await PageAsync<EnvironmentsPage>(c, "Environments", "Environments", new() { ["Data"] = await _data.EnvironmentsAsync(c.RequestAborted), ["Viewer"] = Viewer(c) }));
        app.MapGet("/environments/{name}", async (HttpContext c, string name) =>
            await (await _data.EnvironmentAsync(name, c.RequestAborted) is { } data
                ? PageAsync<EnvironmentPage>(c, $"Environment {name}", "Environments", new() { ["Data"] = data, ["Viewer"] = Viewer(c) })
                : MessageAsync(c, "Environments", $"There is no environment '{name}'.", 404)));
        app.MapGet("/train", async c => await PageAsync<TrainPage>(c, "Train", "Train", new() { ["Data"] = await _data.TrainAsync(c.RequestAborted) }));
        app.MapGet("/switchover", async c => await PageAsync<SwitchoverPage>(c, "Switchover", "Switchover", new() { ["Journal"] = await _data.SwitchoverAsync(c.RequestAborted) }));
        app.MapGet("/login", c => LoginPageAsync(c, _options.Users.Any ? null : "This server has no users (it was started without --tokens): it is read-only.", SafeReturn(Query(c, "returnTo")), 200));
        app.MapPost("/login", LoginAsync);
        app.MapPost("/logout", LogoutAsync);
        app.MapPost("/environments/new", c => FormWriteAsync(c, null, async (actor, form) =>
        {
            var record = await CreateAsync(form, actor, _stopping);
            return $"/environments/{Uri.EscapeDataString(record["name"]!.GetValue<string>())}";
        }));
        app.MapPost("/environments/{name}/extend", (HttpContext c, string name) => FormWriteAsync(c, name, async (actor, form) => { await ExtendAsync(name, form, actor, _stopping); return $"/environments/{Uri.EscapeDataString(name)}"; }));
        app.MapPost("/environments/{name}/sleep", (HttpContext c, string name) => FormWriteAsync(c, name, async (actor, form) => { await SleepAsync(name, form, actor, _stopping); return $"/environments/{Uri.EscapeDataString(name)}"; }));
        app.MapPost("/environments/{name}/wake", (HttpContext c, string name) => FormWriteAsync(c, name, async (actor, form) => { await WakeAsync(name, form, actor, _stopping); return $"/environments/{Uri.EscapeDataString(name)}"; }));
        MapJobs(app);
        app.MapPost("/environments/{name}/delete", (HttpContext c, string name) => FormWriteAsync(c, name, async (actor, form) => { await DeleteAsync(name, form, actor, _stopping); return "/environments"; }));
    }

    // ---- Writes: the same services and rules as the CLI ----

    // ---- Sign-in ----

    // ---- Live deploys ----

    /// <summary>
    /// Server-sent events of the deploy view: the whole view at once, then again whenever the farm's deploy keys change
    /// in the state store (a deploy in any process), and every second while a deploy runs (its pods' readiness).
    /// </summary>
    private Task DeployEventsAsync(HttpContext context) => EventStreamAsync(context, async cancellationToken =>
    {
        StartEvents(context);
        var seen = 0L;
        while (!cancellationToken.IsCancellationRequested)
        {
            var snapshot = await _events.NextAsync(seen, s => s.View["running"] is null ? TimeSpan.FromSeconds(15) : TimeSpan.FromSeconds(5), cancellationToken);
            await SendEventAsync(context, snapshot.Version > seen ? "deploy" : null, snapshot.Json, cancellationToken);
            seen = snapshot.Version;
        }
    });

    /// <summary>
    /// A stream of server-sent events: admitted per client address (429 past the limit), ended by the browser or by the
    /// server's stop, which end it quietly.
    /// </summary>
    private async Task EventStreamAsync(HttpContext context, Func<CancellationToken, Task> stream)
    {
        var (lease, refusal) = _events.Admit(context.Connection.RemoteIpAddress ?? IPAddress.None);
        if (lease is null)
        {
            await Problem(context, 429, refusal!);
            return;
        }

        using (lease)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping);
            try
            {
                await stream(linked.Token);
            }
            catch (OperationCanceledException)
            {
                // The browser went away, or the server stops.
            }
        }
    }

    private static void StartEvents(HttpContext context)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
    }

    /// <summary>Sends one event (or, without a name, a keep-alive comment) and flushes it.</summary>
    private static async Task SendEventAsync(HttpContext context, string? name, string data, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync(name is null ? ": keep-alive\n\n" : $"event: {name}\ndata: {data}\n\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }

    // ---- Responses ----

    private static async Task Json(HttpContext context, Task<JsonObject> data)
    {
        var json = await data;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.WriteAsync(json.ToJsonString(), context.RequestAborted);
    }

    /// <summary>The JSON, or a 404 when there is no such thing.</summary>
    private static async Task Found(HttpContext context, Task<JsonObject?> data)
    {
        if (await data is { } json)
        {
            await Json(context, Task.FromResult(json));
            return;
        }

        await Problem(context, 404, "not found");
    }

    private static Task Problem(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.WriteAsync(new JsonObject { ["error"] = message }.ToJsonString(), context.RequestAborted);
    }

    /// <summary>A page: its body (a Razor component with its parameters) in the dashboard's layout, rendered on the server.</summary>
    private async Task PageAsync<T>(HttpContext context, string title, string active, Dictionary<string, object?> parameters, int status = 200)
        where T : IComponent
    {
        var viewer = Viewer(context);
        var html = await _html.Dispatcher.InvokeAsync(async () =>
        {
            var body = (await _html.RenderComponentAsync<T>(ParameterView.FromDictionary(parameters))).ToHtmlString();
            return (await _html.RenderComponentAsync<LayoutPage>(ParameterView.FromDictionary(new Dictionary<string, object?>
            {
                ["Project"] = _data.Model.Project,
                ["Title"] = title,
                ["Active"] = active,
                ["Viewer"] = viewer,
                ["Body"] = new MarkupString(body),
            }))).ToHtmlString();
        });
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(html, context.RequestAborted);
    }

    /// <summary>A page that only says something (not found, say).</summary>
    private Task MessageAsync(HttpContext context, string active, string text, int status) =>
        PageAsync<MessagePage>(context, status == 404 ? "Not found" : "Capstan", active, new() { ["Text"] = text }, status);

    private Task LoginPageAsync(HttpContext context, string? problem, string? returnTo, int status) =>
        PageAsync<LoginPage>(context, "Sign in", string.Empty, new() { ["Problem"] = problem, ["ReturnTo"] = returnTo }, status);

    private static string? Query(HttpContext context, string key) => context.Request.Query[key].ToString() is { Length: > 0 } v ? v : null;

    private static bool Revisions(HttpContext context, out int from, out int to)
    {
        to = 0;
        return int.TryParse(Query(context, "from"), out from) & int.TryParse(Query(context, "to"), out to);
    }

    private static async Task Asset(HttpContext context, string name)
    {
        var stream = name is "app.css" or "app.js" ? Assembly.GetExecutingAssembly().GetManifestResourceStream($"Capstan.Web.assets.{name}") : null;
        if (stream is null)
        {
            context.Response.StatusCode = 404;
            return;
        }

        await using (stream)
        {
            context.Response.ContentType = name.EndsWith(".css", StringComparison.Ordinal) ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
            context.Response.Headers.CacheControl = "no-cache";
            await stream.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
    }
}

/// <summary>The fields of a form or of a JSON body, read the same way.</summary>
internal sealed class Fields(IReadOnlyDictionary<string, IReadOnlyList<string>> values)
{
    public Fields(IFormCollection form)
        : this(form.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)[.. kv.Value.Where(v => v is not null).Select(v => v!.Trim())], StringComparer.Ordinal))
    {
    }

    public static Fields FromJson(JsonObject? body)
    {
        var values = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (key, node) in body ?? [])
        {
            values[key] = node switch
            {
                JsonArray list => [.. list.Select(n => n?.ToString() ?? string.Empty)],
                null => [],
                _ => [node.ToString()],
            };
        }

        return new Fields(values);
    }

    public string? One(string key) => values.GetValueOrDefault(key)?.FirstOrDefault(v => v.Length > 0);

    public IReadOnlyList<string> All(string key) => [.. values.GetValueOrDefault(key)?.Where(v => v.Length > 0) ?? []];

    public bool Flag(string key) => One(key) is "1" or "true" or "on";

    /// <summary>What was typed into the form (its token aside), to show it again with an error.</summary>
    public IReadOnlyDictionary<string, string> Typed() =>
        values.Where(kv => kv.Key != "csrf").ToDictionary(kv => kv.Key, kv => string.Join(",", kv.Value), StringComparer.Ordinal);
}
