using System.Collections.Immutable;

namespace Capstan.Core.Kubernetes;

/// <summary>The part of Kubernetes object metadata that Capstan writes.</summary>
public sealed record ObjectMeta(
    string Name,
    string? Namespace = null,
    ImmutableSortedDictionary<string, string>? Labels = null,
    ImmutableSortedDictionary<string, string>? Annotations = null);

/// <summary>Every object Capstan renders: a kind, an API version and metadata.</summary>
public interface IKubeObject
{
    /// <summary>The API group and version, for example <c>apps/v1</c>.</summary>
    string ApiVersion { get; }

    /// <summary>The kind, for example <c>Deployment</c>.</summary>
    string Kind { get; }

    /// <summary>Name, namespace, labels and annotations.</summary>
    ObjectMeta Metadata { get; }

    /// <summary>A copy of the object with other metadata (used to add common labels).</summary>
    IKubeObject WithMetadata(ObjectMeta metadata);
}

/// <summary>Helpers to build the sorted maps that labels, annotations and data use.</summary>
public static class SortedMap
{
    /// <summary>An empty ordinal-sorted map.</summary>
    public static ImmutableSortedDictionary<string, string> Empty { get; } =
        ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>An ordinal-sorted map of the given pairs; a later pair wins over an earlier one.</summary>
    public static ImmutableSortedDictionary<string, string> Of(params (string Key, string Value)[] pairs)
    {
        var builder = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            builder[key] = value;
        }

        return builder.ToImmutable();
    }

    /// <summary>An ordinal-sorted map of a dictionary.</summary>
    public static ImmutableSortedDictionary<string, string> From(IEnumerable<KeyValuePair<string, string>> pairs) =>
        ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, pairs);
}
