using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <summary>Numbers from JSON nodes, through <see cref="JsonNumbers"/>.</summary>
internal static class JsonNumber
{
    public static long? Long(JsonNode? node) => JsonNumbers.Long(node);

    public static double? Double(JsonNode? node) => JsonNumbers.Double(node);
}
