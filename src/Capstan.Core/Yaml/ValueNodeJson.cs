using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.Core.Yaml;

/// <summary>Converts a <see cref="ValueNode"/> tree to JSON, typing plain scalars by the YAML 1.2 core schema.</summary>
public static class ValueNodeJson
{
    /// <summary>The JSON of a node.</summary>
    public static JsonNode? ToJson(ValueNode node) => node switch
    {
        ValueMap map => new JsonObject(map.Entries.Select(e => KeyValuePair.Create(e.Key, ToJson(e.Value)))),
        ValueList list => new JsonArray([.. list.Items.Select(ToJson)]),
        ValueScalar s => s.Type switch
        {
            ScalarType.Null => null,
            ScalarType.Bool => JsonValue.Create(s.AsBool()!.Value),
            ScalarType.Int when s.AsInt() is { } i => JsonValue.Create(i),
            ScalarType.Float when double.TryParse(s.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) => JsonValue.Create(d),
            _ => JsonValue.Create(s.Text),
        },
        _ => null,
    };
}
