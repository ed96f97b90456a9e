using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// Reads numbers from JSON nodes whatever backs them: parsed JSON converts to any numeric type, but a node built in code
/// from an int cannot be read as a long (and the other way round), and the API writes some int64 values as strings.
/// </summary>
public static class JsonNumbers
{
    /// <summary>The number as a long, or null when the node holds none.</summary>
    public static long? Long(JsonNode? node)
    {
        if (node is not JsonValue value)
        {
            return null;
        }

        if (value.GetValueKind() == JsonValueKind.String)
        {
            return long.TryParse(value.GetValue<string>(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
        }

        if (value.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }

        if (value.TryGetValue<long>(out var l))
        {
            return l;
        }

        if (value.TryGetValue<int>(out var i))
        {
            return i;
        }

        return value.TryGetValue<double>(out var d) ? (long)d : null;
    }

    /// <summary>The number as a double, or null when the node holds none.</summary>
    public static double? Double(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<double>(out var d) ? d : Long(node);
}
