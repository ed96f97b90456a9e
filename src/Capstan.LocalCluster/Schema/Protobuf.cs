using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;
using Google.Protobuf;

namespace Capstan.LocalCluster.Schema;

/// <summary>
/// Kubernetes' protobuf form (<c>application/vnd.kubernetes.protobuf</c>) of the served kinds, read and written from
/// the API schema's field numbers over Google.Protobuf's wire primitives, as kube-apiserver's serializer does: a body
/// is the magic <c>k8s\0</c>, then a <c>runtime.Unknown</c> holding the type (apiVersion and kind) and the object's
/// message. Quantity, IntOrString, Time/MicroTime and FieldsV1 are messages of their own; maps are repeated key/value
/// entries; lists are repeated fields. A watch stream is length-prefixed <c>WatchEvent</c> messages without the
/// envelope, each holding its object with it.
/// </summary>
internal static partial class Protobuf
{
    /// <summary>The media type of a protobuf body.</summary>
    public const string MediaType = "application/vnd.kubernetes.protobuf";

    /// <summary>The media type of a protobuf watch stream.</summary>
    public const string WatchMediaType = MediaType + ";stream=watch";

    private const int MaxDepth = 64;

    private static readonly byte[] Magic = "k8s\0"u8.ToArray();

    /// <summary>
    /// True when a client's first choice in <c>Accept</c> is protobuf (client-go's typed clients send
    /// <c>application/vnd.kubernetes.protobuf,application/json</c>). A choice with <c>as=</c> (a Table, a discovery
    /// document) is not an object's protobuf form.
    /// </summary>
    public static bool Preferred(string? accept)
    {
        if (string.IsNullOrEmpty(accept))
        {
            return false;
        }

        var first = accept.Split(',')[0];
        var parts = first.Split(';');
        return parts[0].Trim().Equals(MediaType, StringComparison.OrdinalIgnoreCase)
            && !parts.Skip(1).Any(p => p.Trim().StartsWith("as=", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>True when a body's Content-Type is protobuf.</summary>
    public static bool IsProtobuf(string? contentType) =>
        contentType is not null && contentType.Split(';')[0].Trim().Equals(MediaType, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// An object in the envelope, or null when it has no protobuf form here: its kind is not in the schema, or a
    /// free-form field of it holds content whose message the schema does not describe (the caller answers JSON, as
    /// kube-apiserver does for kinds without protobuf).
    /// </summary>
    public static byte[]? TryEncode(JsonObject obj)
    {
        var kind = obj["kind"]?.GetValue<string>() ?? string.Empty;
        var apiVersion = obj["apiVersion"]?.GetValue<string>() ?? string.Empty;
        if (ApiSchema.Default.ForKind(kind) is not { } type || TryMessage(type, obj) is not { } message)
        {
            return null;
        }

        return Envelope(apiVersion, kind, message);
    }

    /// <summary>An object's message alone (no envelope), as a list holds its items; null as for <see cref="TryEncode"/>.</summary>
    public static byte[]? TryMessage(SchemaType type, JsonObject obj)
    {
        try
        {
            using var buffer = new MemoryStream();
            var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
            WriteMessage(ProtobufLayout.Of(type), obj, output);
            output.Flush();
            return buffer.ToArray();
        }
        catch (NotEncodableException)
        {
            return null;
        }
    }

    /// <summary>A list in the envelope: its metadata (resource version) and its items' messages.</summary>
    public static byte[] EncodeList(string apiVersion, string kind, string resourceVersion, IEnumerable<byte[]> items)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
        using (var meta = new MemoryStream())
        {
            var metaOutput = new CodedOutputStream(meta, leaveOpen: true);
            metaOutput.WriteTag(2, WireFormat.WireType.LengthDelimited);
            metaOutput.WriteString(resourceVersion);
            metaOutput.Flush();
            WriteBytes(output, 1, meta.GetBuffer().AsMemory(0, (int)meta.Length));
        }

        foreach (var item in items)
        {
            WriteBytes(output, 2, item);
        }

        output.Flush();
        return Envelope(apiVersion, kind, buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    /// <summary>One frame of a watch stream: the length, then a WatchEvent of the type and the object's envelope.</summary>
    public static byte[] WatchFrame(string type, byte[] objectEnvelope)
    {
        using var buffer = new MemoryStream();
        buffer.Write(new byte[4]);
        var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
        output.WriteTag(1, WireFormat.WireType.LengthDelimited);
        output.WriteString(type);
        using (var raw = new MemoryStream())
        {
            var rawOutput = new CodedOutputStream(raw, leaveOpen: true);
            WriteBytes(rawOutput, 1, objectEnvelope);
            rawOutput.Flush();
            WriteBytes(output, 2, raw.GetBuffer().AsMemory(0, (int)raw.Length));
        }

        output.Flush();
        var frame = buffer.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }

    /// <summary>A message in the envelope, with its type.</summary>
    public static byte[] Envelope(string apiVersion, string kind, ReadOnlyMemory<byte> message)
    {
        using var buffer = new MemoryStream(message.Length + 64);
        buffer.Write(Magic);
        var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
        using (var typeMeta = new MemoryStream())
        {
            var typeOutput = new CodedOutputStream(typeMeta, leaveOpen: true);
            typeOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
            typeOutput.WriteString(apiVersion);
            typeOutput.WriteTag(2, WireFormat.WireType.LengthDelimited);
            typeOutput.WriteString(kind);
            typeOutput.Flush();
            WriteBytes(output, 1, typeMeta.GetBuffer().AsMemory(0, (int)typeMeta.Length));
        }

        WriteBytes(output, 2, message);
        output.WriteTag(3, WireFormat.WireType.LengthDelimited);
        output.WriteString(string.Empty);
        output.WriteTag(4, WireFormat.WireType.LengthDelimited);
        output.WriteString(string.Empty);
        output.Flush();
        return buffer.ToArray();
    }

    private static void WriteBytes(CodedOutputStream output, int number, ReadOnlyMemory<byte> bytes)
    {
        output.WriteTag(number, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(UnsafeByteOperations.UnsafeWrap(bytes));
    }

    private static void WriteMessage(ProtobufLayout layout, JsonObject obj, CodedOutputStream output)
    {
        foreach (var slot in layout.Slots)
        {
            if (slot.Embedded is { } embedded)
            {
                // The fields of an embedded Go struct sit in the object itself; the message holds them when any is set.
                if (embedded.Slots.Any(s => Holds(s, obj)))
                {
                    WriteBytes(output, slot.Number, Nested(embedded, obj));
                }
            }
            else if (obj[slot.Field!.Name] is { } value)
            {
                WriteField(slot.Field, slot.Field.Type, slot.Number, value, output);
            }
        }
    }

    private static bool Holds(ProtobufLayout.Slot slot, JsonObject obj) =>
        slot.Field is { } field ? obj[field.Name] is not null : slot.Embedded!.Slots.Any(s => Holds(s, obj));

    private static ReadOnlyMemory<byte> Nested(ProtobufLayout layout, JsonObject obj) => Nested(output => WriteMessage(layout, obj, output));

    private static ReadOnlyMemory<byte> Nested(Action<CodedOutputStream> write)
    {
        var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
        write(output);
        output.Flush();
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    private static void WriteField(SchemaField field, FieldType type, int number, JsonNode value, CodedOutputStream output)
    {
        if (type.IsList)
        {
            if (value is not JsonArray list || type.Element!.IsList || type.Element.IsMap)
            {
                throw new NotEncodableException();
            }

            foreach (var item in list)
            {
                WriteField(field, type.Element, number, item ?? throw new NotEncodableException(), output);
            }

            return;
        }

        if (type.IsMap)
        {
            if (value is not JsonObject map)
            {
                throw new NotEncodableException();
            }

            // Go writes a map's entries sorted by key.
            foreach (var (key, item) in map.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                WriteBytes(output, number, Nested(entry =>
                {
                    entry.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    entry.WriteString(key);
                    if (item is not null)
                    {
                        WriteField(field, type.Element!, 2, item, entry);
                    }
                }));
            }

            return;
        }

        if (type.Reference is not null)
        {
            WriteBytes(output, number, Nested(ProtobufLayout.Of(ApiSchema.Default.Resolve(type.Reference)), value as JsonObject ?? throw new NotEncodableException()));
            return;
        }

        switch (type.Primitive)
        {
            case "string":
                output.WriteTag(number, WireFormat.WireType.LengthDelimited);
                output.WriteString(Text(value));
                break;
            case "int32":
                output.WriteTag(number, WireFormat.WireType.Varint);
                output.WriteInt32((int)(JsonNumber.Long(value) ?? throw new NotEncodableException()));
                break;
            case "int64":
                output.WriteTag(number, WireFormat.WireType.Varint);
                output.WriteInt64(JsonNumber.Long(value) ?? throw new NotEncodableException());
                break;
            case "boolean":
                output.WriteTag(number, WireFormat.WireType.Varint);
                output.WriteBool(value.GetValueKind() == JsonValueKind.True || (value.GetValueKind() == JsonValueKind.False ? false : throw new NotEncodableException()));
                break;
            case "number":
                output.WriteTag(number, WireFormat.WireType.Fixed64);
                output.WriteDouble(JsonNumber.Double(value) ?? throw new NotEncodableException());
                break;
            case "byte":
                output.WriteTag(number, WireFormat.WireType.LengthDelimited);
                output.WriteBytes(ByteString.FromBase64(Text(value)));
                break;
            case "quantity":
                // resource.Quantity: its canonical string in field 1.
                WriteBytes(output, number, Nested(q =>
                {
                    q.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    q.WriteString(value.GetValueKind() == JsonValueKind.Number ? value.ToJsonString() : Text(value));
                }));
                break;
            case "intstr":
                // intstr.IntOrString: type (0 int, 1 string), intVal, strVal; Go writes all three.
                var isInt = value.GetValueKind() == JsonValueKind.Number;
                WriteBytes(output, number, Nested(i =>
                {
                    i.WriteTag(1, WireFormat.WireType.Varint);
                    i.WriteInt64(isInt ? 0 : 1);
                    i.WriteTag(2, WireFormat.WireType.Varint);
                    i.WriteInt32(isInt ? (int)(JsonNumber.Long(value) ?? throw new NotEncodableException()) : 0);
                    i.WriteTag(3, WireFormat.WireType.LengthDelimited);
                    i.WriteString(isInt ? string.Empty : Text(value));
                }));
                break;
            case "time":
                // metav1.Time and MicroTime: seconds and nanoseconds since the epoch.
                if (!DateTimeOffset.TryParse(Text(value), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
                {
                    throw new NotEncodableException();
                }

                WriteBytes(output, number, Nested(t =>
                {
                    t.WriteTag(1, WireFormat.WireType.Varint);
                    t.WriteInt64(time.ToUnixTimeSeconds());
                    t.WriteTag(2, WireFormat.WireType.Varint);
                    t.WriteInt32((int)(time.UtcTicks % TimeSpan.TicksPerSecond * 100));
                }));
                break;
            case "any" when field.RawJson:
                WriteBytes(output, number, Nested(raw =>
                {
                    raw.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    raw.WriteBytes(ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(value)));
                }));
                break;
            default:
                // Free-form content whose message the schema does not describe.
                throw new NotEncodableException();
        }
    }

    private static string Text(JsonNode value) =>
        value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : throw new NotEncodableException();

    /// <summary>Content that has no protobuf form here, or a protobuf body that does not match the schema.</summary>
    private sealed class NotEncodableException(string message = "no protobuf form") : Exception(message);
}
