using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>An error the API server answers with: an HTTP code and a Kubernetes Status object.</summary>
public sealed class ApiError(int code, string reason, string message, JsonArray? causes = null, string? kind = null, string? name = null, string? group = null) : Exception(message)
{
    /// <summary>The HTTP status code.</summary>
    public int Code { get; } = code;

    /// <summary>The Status reason (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Forbidden, Gone…).</summary>
    public string Reason { get; } = reason;

    /// <summary>The Status object, as the real API server writes it.</summary>
    public JsonObject ToStatus()
    {
        var details = new JsonObject();
        if (name is not null)
        {
            details["name"] = name;
        }

        if (group is not null)
        {
            details["group"] = group;
        }

        if (kind is not null)
        {
            details["kind"] = kind;
        }

        if (causes is not null)
        {
            details["causes"] = causes.DeepClone();
        }

        return new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = Message,
            ["reason"] = Reason,
            ["details"] = details,
            ["code"] = Code,
        };
    }

    /// <summary>404 for a missing object.</summary>
    public static ApiError NotFound(ResourceType type, string name) =>
        new(404, "NotFound", $"{type.Plural}{GroupSuffix(type)} \"{name}\" not found", kind: type.Plural, name: name, group: GroupOf(type));

    /// <summary>409 for an object that exists already.</summary>
    public static ApiError AlreadyExists(ResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.Plural}{GroupSuffix(type)} \"{name}\" already exists", kind: type.Plural, name: name, group: GroupOf(type));

    /// <summary>409 for a write based on an old resourceVersion.</summary>
    public static ApiError Conflict(ResourceType type, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {type.Plural}{GroupSuffix(type)} \"{name}\": {why}", kind: type.Plural, name: name, group: GroupOf(type));

    /// <summary>422 for an invalid object, with its causes.</summary>
    public static ApiError Invalid(ResourceType type, string name, params (string Field, string Message)[] causes)
    {
        // As kube-apiserver words it: Kind.group "name" is invalid: field: message, in brackets when there are several.
        var all = string.Join(", ", causes.Select(c => $"{c.Field}: {c.Message}"));
        return new(422, "Invalid",
            $"{type.Kind}{GroupSuffix(type)} \"{name}\" is invalid: {(causes.Length > 1 ? $"[{all}]" : all)}",
            new JsonArray([.. causes.Select(c => (JsonNode)new JsonObject { ["reason"] = CauseReason(c.Message), ["message"] = c.Message, ["field"] = c.Field })]),
            type.Kind, name, GroupOf(type));
    }

    private static string CauseReason(string message) =>
        message.StartsWith("Required value", StringComparison.Ordinal) ? "FieldValueRequired"
        : message.StartsWith("Duplicate value", StringComparison.Ordinal) ? "FieldValueDuplicate"
        : message.StartsWith("Forbidden", StringComparison.Ordinal) ? "FieldValueForbidden"
        : message.StartsWith("Unsupported value", StringComparison.Ordinal) ? "FieldValueNotSupported"
        : message.StartsWith("Too long", StringComparison.Ordinal) ? "FieldValueTooLong"
        : "FieldValueInvalid";

    /// <summary>401 for a request without valid credentials.</summary>
    public static ApiError Unauthorized() => new(401, "Unauthorized", "Unauthorized");

    /// <summary>400 for a request that makes no sense.</summary>
    public static ApiError BadRequest(string message) => new(400, "BadRequest", message);

    /// <summary>The group in a Status's details: omitted for the core group, as kube-apiserver's omitempty does.</summary>
    private static string? GroupOf(ResourceType type) => type.Group.Length == 0 ? null : type.Group;

    private static string GroupSuffix(ResourceType type) => type.Group.Length == 0 ? string.Empty : "." + type.Group;
}
