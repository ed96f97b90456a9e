using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Deploy;
using Capstan.State;
using Microsoft.AspNetCore.Http;

namespace Capstan.Web;

/// <content>Who may change what: bearer tokens for the API, signed-in sessions with CSRF tokens for forms, same-origin checks, login and logout, and the one path every write takes.</content>
public sealed partial class Dashboard
{
    /// <summary>The message of a refused change, as the CLI would print it; null for anything that is not the user's doing.</summary>
    private static string? Refusal(Exception ex) => Refusals.Classify(ex)?.Message;

    /// <summary>Why a user may not do something (null: they may): the user, their role and the role it needs.</summary>
    internal static string? Forbidden(User user, Role needed, string what) =>
        user.May(needed) ? null : $"refused: {user.Name} is a {user.RoleWord}, and {what} needs the {needed.ToString().ToLowerInvariant()} role (the tokens file's third column); nothing was changed";

    private Task ApiWriteAsync(HttpContext context, Func<string, JsonObject?, Task<JsonObject>> write) =>
        ApiWriteAsync(context, Role.Deployer, "a change", write);

    private async Task ApiWriteAsync(HttpContext context, Role needed, string what, Func<string, JsonObject?, Task<JsonObject>> write)
    {
        var user = BearerUser(context);
        if (user is null)
        {
            await Problem(context, 401, _options.Users.Any
                ? "changes need a token: send Authorization: Bearer TOKEN (a token from the server's tokens file)"
                : "this server has no users (it was started without --tokens): it is read-only");
            return;
        }

        if (Forbidden(user, needed, what) is { } forbidden)
        {
            await Problem(context, 403, forbidden);
            return;
        }

        JsonObject? body = null;
        if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            try
            {
                body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject
                    ?? throw new UserInputException("the request body must be a JSON object");
            }
            catch (System.Text.Json.JsonException ex)
            {
                await Problem(context, 400, $"the request body is not JSON: {ex.Message}");
                return;
            }
            catch (UserInputException ex)
            {
                await Problem(context, 400, ex.Message);
                return;
            }
        }

        try
        {
            await Json(context, write(user.Name, body));
        }
        catch (JobForbiddenException ex)
        {
            await Problem(context, 403, ex.Message);
        }
        catch (Exception ex) when (Refusal(ex) is { } message)
        {
            await Problem(context, ex is DeployLockedException or StateConflictException ? 409 : 400, message);
        }
    }

    private Task FormWriteAsync(HttpContext context, string? environment, Func<string, Fields, Task<string>> write) =>
        FormWriteAsync(context, Role.Deployer, "a change", write, (viewer, error, form, status) => RenderFormPageAsync(context, environment, viewer, error, form, status));

    /// <summary>
    /// A form's change: refused (the form's page again, with why) without a sign-in, without the session's CSRF token, from
    /// another origin, or without the role; otherwise done as the user, then a redirect to where <paramref name="write"/> says.
    /// </summary>
    private async Task FormWriteAsync(HttpContext context, Role needed, string what, Func<string, Fields, Task<string>> write, Func<Viewer, string, Fields, int, Task> refuse)
    {
        var viewer = Viewer(context);
        var form = await FormAsync(context);
        var (user, refusal, status) = FormUser(context, form, needed, what);
        if (user is null)
        {
            await refuse(viewer, refusal!, form, status);
            return;
        }

        try
        {
            var location = await write(user.Name, form);
            context.Response.StatusCode = 303;
            context.Response.Headers.Location = location;
        }
        catch (Exception ex) when (Refusal(ex) is { } message)
        {
            await refuse(viewer, message, form, 400);
        }
    }

    /// <summary>The user a form post acts as, or why it is refused (and the status of the refusal).</summary>
    private (User? User, string? Refusal, int Status) FormUser(HttpContext context, Fields form, Role needed, string what)
    {
        var bearer = BearerUser(context);
        var session = _sessions.Find(context.Request.Cookies[Sessions.Cookie]);
        if (bearer is null && session is null)
        {
            return (null, "refused: sign in with a token to make changes; nothing was changed", 401);
        }

        if (bearer is null && (!Sessions.CsrfMatches(session!, form.One("csrf")) || !SameOrigin(context)))
        {
            return (null, "refused: the form's token does not match your session (reload the page and try again); nothing was changed", 403);
        }

        var user = bearer ?? session!.User;
        return Forbidden(user, needed, what) is { } forbidden ? (null, forbidden, 403) : (user, null, 200);
    }

    /// <summary>The page a form was on, again, with the error above it and (for create) what was typed.</summary>
    private async Task RenderFormPageAsync(HttpContext context, string? environment, Viewer viewer, string error, Fields form, int status)
    {
        if (environment is not null && await _data.EnvironmentAsync(environment, context.RequestAborted) is { } data)
        {
            await PageAsync<Components.EnvironmentPage>(context, $"Environment {environment}", "Environments", new() { ["Data"] = data, ["Viewer"] = viewer, ["Problem"] = error }, status);
            return;
        }

        await PageAsync<Components.EnvironmentsPage>(context, "Environments", "Environments", new() { ["Data"] = await _data.EnvironmentsAsync(context.RequestAborted), ["Viewer"] = viewer, ["Problem"] = error, ["Form"] = form.Typed() }, status);
    }

    private async Task LoginAsync(HttpContext context)
    {
        var form = await FormAsync(context);
        if (!SameOrigin(context))
        {
            // A form on another site must not sign a visitor in (as someone else, whose name would then go on the visitor's changes).
            await LoginPageAsync(context, "refused: the sign-in did not come from this dashboard's own page", null, 403);
            return;
        }

        var user = _options.Users.Authenticate(form.One("token"));
        if (user is null)
        {
            await LoginPageAsync(context, _options.Users.Any ? "That token is not valid." : "This server has no users (it was started without --tokens): it is read-only.", SafeReturn(form.One("returnTo")), 401);
            return;
        }

        var session = _sessions.Start(user);
        context.Response.Cookies.Append(Sessions.Cookie, session.Id, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            MaxAge = Sessions.Lifetime,
        });
        context.Response.StatusCode = 303;
        context.Response.Headers.Location = SafeReturn(form.One("returnTo")) ?? "/";
    }

    private async Task LogoutAsync(HttpContext context)
    {
        var form = await FormAsync(context);
        if (_sessions.Find(context.Request.Cookies[Sessions.Cookie]) is { } session && Sessions.CsrfMatches(session, form.One("csrf")))
        {
            _sessions.End(session.Id);
            context.Response.Cookies.Delete(Sessions.Cookie, new CookieOptions { Path = "/" });
        }

        context.Response.StatusCode = 303;
        context.Response.Headers.Location = "/";
    }

    /// <summary>The fields of a form post; a post that is not a form has none (and is refused as any form without its token).</summary>
    private static async Task<Fields> FormAsync(HttpContext context) =>
        context.Request.HasFormContentType ? new Fields(await context.Request.ReadFormAsync(context.RequestAborted)) : Fields.FromJson(null);

    /// <summary>Only a plain path of this dashboard is a place to return to after signing in (nothing a browser could read as another host).</summary>
    private static string? SafeReturn(string? path) =>
        path is { Length: > 0 } && ReturnPath().IsMatch(path) && !path.StartsWith("//", StringComparison.Ordinal) ? path : null;

    [System.Text.RegularExpressions.GeneratedRegex("^/[A-Za-z0-9._~/-]*$")]
    private static partial System.Text.RegularExpressions.Regex ReturnPath();

    private User? BearerUser(HttpContext context) =>
        context.Request.Headers.Authorization.ToString() is var header && header.StartsWith("Bearer ", StringComparison.Ordinal)
            ? _options.Users.Authenticate(header["Bearer ".Length..].Trim())
            : null;

    private Viewer Viewer(HttpContext context) =>
        _sessions.Find(context.Request.Cookies[Sessions.Cookie]) is { } session ? new Viewer(session.User.Name, session.CsrfToken, session.User.Role) : Web.Viewer.Anonymous;

    /// <summary>A browser's form post names its origin; one from another origin is refused even with a valid token.</summary>
    private static bool SameOrigin(HttpContext context) =>
        context.Request.Headers.Origin.ToString() is not { Length: > 0 } origin
        || (Uri.TryCreate(origin, UriKind.Absolute, out var uri) && string.Equals(uri.Authority, context.Request.Host.Value, StringComparison.OrdinalIgnoreCase));
}
