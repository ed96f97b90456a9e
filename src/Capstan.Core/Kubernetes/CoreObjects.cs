using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace Capstan.Core.Kubernetes;

/// <summary>A v1 Namespace.</summary>
public sealed record Namespace([property: JsonPropertyOrder(-1)] ObjectMeta Metadata) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "Namespace";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>A v1 ConfigMap. Never holds secret values: those go to <see cref="Secret"/>.</summary>
public sealed record ConfigMap([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, ImmutableSortedDictionary<string, string> Data) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "ConfigMap";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>A v1 Secret; <see cref="Data"/> values are base64, as the API server stores and returns them.</summary>
public sealed record Secret([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, string Type, ImmutableSortedDictionary<string, string> Data) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "Secret";

    /// <summary>Builds a Secret from plain-text values, encoding them as the API expects.</summary>
    public static Secret FromPlainText(ObjectMeta metadata, string type, IEnumerable<KeyValuePair<string, string>> values) =>
        new(metadata, type, SortedMap.From(values.Select(kv =>
            KeyValuePair.Create(kv.Key, Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(kv.Value))))));

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>A v1 Service.</summary>
public sealed record Service([property: JsonPropertyOrder(-1)] ObjectMeta Metadata, ServiceSpec Spec) : IKubeObject
{
    /// <inheritdoc/>
    [JsonPropertyOrder(-3)]
    public string ApiVersion => "v1";

    /// <inheritdoc/>
    [JsonPropertyOrder(-2)]
    public string Kind => "Service";

    /// <inheritdoc/>
    public IKubeObject WithMetadata(ObjectMeta metadata) => this with { Metadata = metadata };
}

/// <summary>The spec of a Service.</summary>
public sealed record ServiceSpec(
    string Type,
    ImmutableSortedDictionary<string, string> Selector,
    IReadOnlyList<ServicePort> Ports);

/// <summary>One port of a Service.</summary>
public sealed record ServicePort(string Name, string Protocol, int Port, IntOrString? TargetPort = null, int? NodePort = null);
