using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// Reads numbers from JSON nodes whatever backs them: parsed JSON converts to any numeric type, but a node built in
/// code from an int cannot be read as a long (and the other way round), so every numeric read goes through here.
/// </summary>
internal static class JsonNumber
{
    public static long? Long(JsonNode? node)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number)
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

    public static double? Double(JsonNode? node)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }

        if (value.TryGetValue<double>(out var d))
        {
            return d;
        }

        return Long(node);
    }
}
