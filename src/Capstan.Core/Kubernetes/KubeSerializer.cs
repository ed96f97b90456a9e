using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Capstan.Core.Yaml;

namespace Capstan.Core.Kubernetes;

/// <summary>
/// The one serializer for Kubernetes objects: typed object → JSON tree (camelCase, nulls omitted,
/// <c>apiVersion</c>, <c>kind</c>, <c>metadata</c> first, then fields in declaration order, maps sorted) → YAML or
/// JSON text with <c>\n</c> newlines. The same object always gives the same bytes.
/// </summary>
public static class KubeSerializer
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        NewLine = "\n",
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The JSON of an object as an immutable element: the fast path to YAML.</summary>
    public static JsonElement ToElement(IKubeObject obj) =>
        obj is UntypedObject
            ? JsonSerializer.SerializeToElement(ToNode(obj), Options)
            : JsonSerializer.SerializeToElement(obj, obj.GetType(), Options);

    /// <summary>The JSON tree of an object, for callers that change it.</summary>
    public static JsonObject ToNode(IKubeObject obj)
    {
        if (obj is not UntypedObject untyped)
        {
            return (JsonObject)JsonSerializer.SerializeToNode(obj, obj.GetType(), Options)!;
        }

        var result = new JsonObject
        {
            ["apiVersion"] = obj.ApiVersion,
            ["kind"] = obj.Kind,
            ["metadata"] = JsonSerializer.SerializeToNode(obj.Metadata, Options),
        };
        foreach (var (key, value) in untyped.Body)
        {
            if (key is not ("apiVersion" or "kind" or "metadata"))
            {
                result[key] = value?.DeepClone();
            }
        }

        return result;
    }

    /// <summary>The JSON bytes of an object (for hashing).</summary>
    public static byte[] ToUtf8Bytes(IKubeObject obj) =>
        obj is UntypedObject ? JsonSerializer.SerializeToUtf8Bytes(ToNode(obj), Options) : JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Options);

    /// <summary>The YAML of an object; Secret values are masked unless <paramref name="revealSecrets"/>.</summary>
    public static string ToYaml(IKubeObject obj, bool revealSecrets = false) =>
        !revealSecrets && obj.Kind == "Secret"
            ? YamlEmitter.Emit(SecretMasker.Mask(ToNode(obj)))
            : YamlEmitter.Emit(ToElement(obj));

    /// <summary>Indented JSON of any tree, with <c>\n</c> newlines and no trailing newline.</summary>
    public static string ToJson(JsonNode node)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            node.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}

/// <summary>
/// Replaces the values of Secret objects, so output can be shown and diffed without printing a secret. Without a key a
/// value becomes <c>&lt;masked&gt;</c>; with one (the repo's <see cref="Security.MaskKey"/>) it becomes a keyed
/// fingerprint, so a change is still visible but a guess cannot be tested against it offline.
/// </summary>
public static class SecretMasker
{
    /// <summary>What stands for a secret value when no key is given.</summary>
    public const string Masked = "<masked>";

    /// <summary>The fingerprint under a key (HMAC-SHA256, 64 bits shown).</summary>
    public static string Fingerprint(string value, byte[] key) =>
        "<masked hmac:" + Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(value)).AsSpan(0, 8)) + ">";

    /// <summary>A copy of the tree with secret values masked (the tree itself when it is not a Secret); with <paramref name="key"/>, keyed fingerprints.</summary>
    public static JsonObject Mask(JsonObject node, byte[]? key = null)
    {
        if (node["kind"]?.GetValue<string>() != "Secret")
        {
            return node;
        }

        var copy = (JsonObject)node.DeepClone();
        foreach (var field in new[] { "data", "stringData" })
        {
            if (copy[field] is JsonObject data)
            {
                foreach (var name in data.Select(kv => kv.Key).ToList())
                {
                    var value = data[name]?.ToJsonString() ?? string.Empty;
                    data[name] = key is null ? Masked : Fingerprint(value, key);
                }
            }
        }

        return copy;
    }
}
