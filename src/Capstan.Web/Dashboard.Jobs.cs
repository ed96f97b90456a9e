using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Deploy;
using Capstan.Web.Components;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Capstan.Web;

/// <content>
/// Actions as jobs: a form (or a JSON body) asks for a deploy, a rollback, a cancel or a lock; the dashboard shows what it
/// would do; the confirmation (carrying the digest of what was shown) starts a job, whose log every viewer follows live.
/// </content>
public sealed partial class Dashboard
{
    private void MapJobs(WebApplication app)
    {
        app.MapGet("/api/v1/jobs", c => Json(c, _jobs.ListAsync(c.RequestAborted)));
        app.MapGet("/api/v1/jobs/{id}", (HttpContext c, string id) => Found(c, _jobs.FindAsync(id, c.RequestAborted)));
        app.MapGet("/api/v1/jobs/{id}/events", JobEventsAsync);
        app.MapPost("/api/v1/jobs/preview", c => ApiJobAsync(c, start: false));
        app.MapPost("/api/v1/jobs", c => ApiJobAsync(c, start: true));

        app.MapGet("/jobs", c => JobsPageAsync(c, Viewer(c), null, 200));
        app.MapGet("/jobs/{id}", async (HttpContext c, string id) =>
            await (await _jobs.FindAsync(id, c.RequestAborted) is { } job
                ? PageAsync<JobLog>(c, $"Job: {job["what"]}", "Jobs", new() { ["Job"] = job, ["Viewer"] = Viewer(c) })
                : MessageAsync(c, "Jobs", $"There is no job '{id}'.", 404)));
        app.MapPost("/jobs/preview", c => FormJobAsync(c, start: false));
        app.MapPost("/jobs", c => FormJobAsync(c, start: true));
    }

    /// <summary>A job from a form: shown first (<c>/jobs/preview</c>), started on confirmation (<c>/jobs</c>).</summary>
    private async Task FormJobAsync(HttpContext context, bool start)
    {
        var viewer = Viewer(context);
        var form = await FormAsync(context);
        var (user, refusal, status) = FormUser(context, form, Role.Viewer, "a job");
        JobRequest? request = null;
        if (user is not null)
        {
            try
            {
                request = JobRequest.Parse(form);
                (refusal, status) = Forbidden(user, request.Needs, request.What) is { } forbidden ? (forbidden, 403) : (null, 200);
            }
            catch (UserInputException ex)
            {
                (refusal, status) = (ex.Message, 400);
            }
        }

        if (user is null || request is null || refusal is not null)
        {
            await JobsPageAsync(context, viewer, refusal, status);
            return;
        }

        try
        {
            if (start)
            {
                var job = await _jobActions.StartAsync(request, form.One("digest") ?? string.Empty, user.Name, _stopping);
                context.Response.StatusCode = 303;
                context.Response.Headers.Location = $"/jobs/{job.Id}";
                return;
            }

            var preview = await _jobActions.PreviewAsync(request, user.Name, context.RequestAborted);
            await PageAsync<JobPreview>(context, $"Confirm: {request.What}", "Jobs", new() { ["Preview"] = preview, ["Fields"] = request.Fields().ToList(), ["Viewer"] = viewer });
        }
        catch (Exception ex) when (Refusal(ex) is { } message)
        {
            await JobsPageAsync(context, viewer, message, ex is DeployLockedException ? 409 : 400);
        }
    }

    /// <summary>
    /// A job from the API, with a bearer token: <c>/api/v1/jobs/preview</c> answers what it would do and its digest;
    /// <c>/api/v1/jobs</c> with that <c>digest</c> starts it (201, the job).
    /// </summary>
    private Task ApiJobAsync(HttpContext context, bool start) =>
        ApiWriteAsync(context, Role.Viewer, "a job", async (actor, body) =>
        {
            var fields = Fields.FromJson(body);
            var request = JobRequest.Parse(fields);
            var user = BearerUser(context)!;
            if (Forbidden(user, request.Needs, request.What) is { } forbidden)
            {
                throw new JobForbiddenException(forbidden);
            }

            if (!start)
            {
                return await _jobActions.PreviewAsync(request, actor, context.RequestAborted);
            }

            var job = await _jobActions.StartAsync(request, fields.One("digest") ?? string.Empty, actor, _stopping);
            context.Response.StatusCode = 201;
            context.Response.Headers.Location = $"/api/v1/jobs/{job.Id}";
            return job.ToJson(withLog: false);
        });

    private async Task JobsPageAsync(HttpContext context, Viewer viewer, string? error, int status)
    {
        var jobs = await _jobs.ListAsync(context.RequestAborted);
        var running = await DeployProgress.RunningAsync(_data.Store, _data.Model.Project, context.RequestAborted);
        var holder = await DeployLock.HolderAsync(_data.Store, _data.Model.Project, context.RequestAborted);
        await PageAsync<JobsPage>(context, "Jobs", "Jobs", new()
        {
            ["Jobs"] = jobs["jobs"]!.AsArray(),
            ["Viewer"] = viewer,
            ["Datacenters"] = _data.Model.DatacenterNames.ToList(),
            ["Namespaces"] = _data.Model.Groups.Select(g => g.Namespace).ToList(),
            ["Running"] = running,
            ["Lock"] = holder?.ToString(),
            ["Error"] = error,
        }, status);
    }

    /// <summary>
    /// Server-sent events of a job's log: <c>log</c> with the new lines (a JSON array) as they are written, then
    /// <c>end</c> with the job once it ended. A finished job sends its whole log and ends at once.
    /// </summary>
    private Task JobEventsAsync(HttpContext context, string id) => EventStreamAsync(context, async cancellationToken =>
    {
        var live = _jobs.Live(id);
        var stored = live is null ? await _jobs.FindAsync(id, cancellationToken) : null;
        if (live is null && stored is null)
        {
            await Problem(context, 404, "not found");
            return;
        }

        StartEvents(context);
        if (stored is not null)
        {
            var log = stored["log"]?.DeepClone() ?? new JsonArray();
            stored.Remove("log");
            await SendEventAsync(context, "log", log.ToJsonString(), cancellationToken);
            await SendEventAsync(context, "end", stored.ToJsonString(), cancellationToken);
            return;
        }

        var seen = 0;
        while (true)
        {
            var (lines, ended, changed) = live!.Since(seen);
            if (lines.Count > 0)
            {
                await SendEventAsync(context, "log", new JsonArray([.. lines.Select(l => (JsonNode)l)]).ToJsonString(), cancellationToken);
                seen += lines.Count;
            }

            if (ended)
            {
                await SendEventAsync(context, "end", live.ToJson(withLog: false).ToJsonString(), cancellationToken);
                return;
            }

            if (await Task.WhenAny(changed, Task.Delay(TimeSpan.FromSeconds(15), cancellationToken)) != changed)
            {
                await SendEventAsync(context, null, string.Empty, cancellationToken);
            }
        }
    });
}

/// <summary>The user's role does not allow the job (answered 403 with who, their role and the role needed).</summary>
internal sealed class JobForbiddenException(string message) : Exception(message);
