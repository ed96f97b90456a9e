using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Capstan.Core.Kubernetes;

/// <summary>Kubernetes' int-or-string (ports by number or name, surge as a count or a percentage).</summary>
[JsonConverter(typeof(IntOrStringConverter))]
public readonly record struct IntOrString
{
    private IntOrString(int? number, string? text)
    {
        Number = number;
        Text = text;
    }

    /// <summary>The number, when this is one.</summary>
    public int? Number { get; }

    /// <summary>The string, when this is one.</summary>
    public string? Text { get; }

    /// <summary>An int value.</summary>
    public static IntOrString FromInt(int value) => new(value, null);

    /// <summary>A string value.</summary>
    public static IntOrString FromString(string value) => new(null, value);

    /// <summary>An int value.</summary>
    public static implicit operator IntOrString(int value) => FromInt(value);

    /// <summary>A string value.</summary>
    public static implicit operator IntOrString(string value) => FromString(value);

    /// <inheritdoc/>
    public override string ToString() => Number?.ToString(CultureInfo.InvariantCulture) ?? Text ?? string.Empty;
}

/// <summary>Writes <see cref="IntOrString"/> as a JSON number or string.</summary>
public sealed class IntOrStringConverter : JsonConverter<IntOrString>
{
    /// <inheritdoc/>
    public override IntOrString Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Number ? IntOrString.FromInt(reader.GetInt32()) : IntOrString.FromString(reader.GetString() ?? string.Empty);

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, IntOrString value, JsonSerializerOptions options)
    {
        if (value.Number is { } number)
        {
            writer.WriteNumberValue(number);
        }
        else
        {
            writer.WriteStringValue(value.Text);
        }
    }
}
