using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Kubernetes;

/// <summary>One cause of an Invalid or Conflict answer: the field and what is wrong with it.</summary>
public sealed record StatusCause(string? Field, string Message, string? Reason);

/// <summary>The API server refused a request; <see cref="Exception.Message"/> is the server's message.</summary>
public class KubeApiException : CapstanException
{
    /// <summary>Creates the exception from a status code and the server's Status object (when it sent one).</summary>
    public KubeApiException(int statusCode, string reason, string message, IReadOnlyList<StatusCause>? causes = null)
        : base(RefusalKind.Failure, message)
    {
        StatusCode = statusCode;
        Reason = reason;
        Causes = causes ?? [];
    }

    /// <inheritdoc/>
    public override string Display => "the cluster refused: " + Message;

    /// <summary>The HTTP status code.</summary>
    public int StatusCode { get; }

    /// <summary>The Status reason (NotFound, Conflict, Invalid…).</summary>
    public string Reason { get; }

    /// <summary>The causes the server listed.</summary>
    public IReadOnlyList<StatusCause> Causes { get; }

    /// <summary>The typed exception for an error answer.</summary>
    internal static KubeApiException From(int code, string body)
    {
        string reason = code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var message = body;
        var causes = new List<StatusCause>();
        try
        {
            if (JsonNode.Parse(body) is JsonObject status && status["kind"]?.GetValue<string>() == "Status")
            {
                reason = status["reason"]?.GetValue<string>() ?? reason;
                message = status["message"]?.GetValue<string>() ?? message;
                foreach (var cause in status["details"]?["causes"] as JsonArray ?? [])
                {
                    causes.Add(new StatusCause(cause?["field"]?.GetValue<string>(), cause?["message"]?.GetValue<string>() ?? string.Empty, cause?["reason"]?.GetValue<string>()));
                }
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }

        return code switch
        {
            404 => new KubeNotFoundException(message),
            409 => new KubeConflictException(reason, message, causes),
            403 => new KubeForbiddenException(message),
            422 => new KubeInvalidException(message, causes),
            _ => new KubeApiException(code, reason, message, causes),
        };
    }
}

/// <summary>404: the object (or its namespace) does not exist.</summary>
public sealed class KubeNotFoundException(string message) : KubeApiException(404, "NotFound", message);

/// <summary>409: an optimistic-concurrency conflict, an object that exists already, or a field owned by another manager.</summary>
public sealed class KubeConflictException(string reason, string message, IReadOnlyList<StatusCause> causes) : KubeApiException(409, reason, message, causes);

/// <summary>403: not allowed.</summary>
public sealed class KubeForbiddenException(string message) : KubeApiException(403, "Forbidden", message);

/// <summary>422: the object is invalid; <see cref="KubeApiException.Causes"/> says which fields.</summary>
public sealed class KubeInvalidException(string message, IReadOnlyList<StatusCause> causes) : KubeApiException(422, "Invalid", message, causes);

/// <summary>The server could not be reached or kept failing after every retry, or a request took too long.</summary>
public sealed class KubeUnavailableException(string message, Exception? inner = null) : CapstanException(RefusalKind.Failure, message, inner);
