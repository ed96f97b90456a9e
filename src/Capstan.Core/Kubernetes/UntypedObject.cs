using System.Text.Json.Nodes;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// An object of a kind Capstan has no type for, read from a <c>manifests</c> release. Its body is kept as
/// written; only metadata (name, namespace, labels) is understood.
/// </summary>
public sealed record UntypedObject(string ApiVersion, string Kind, ObjectMeta Metadata, JsonObject Body) : IKubeObject
{
    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}
