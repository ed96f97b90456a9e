using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
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
internal static class Protobuf
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

    private static ReadOnlyMemory<byte> Nested(ProtobufLayout layout, JsonObject obj)
    {
        var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, 512, leaveOpen: true);
        WriteMessage(layout, obj, output);
        output.Flush();
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

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

    /// <summary>
    /// Reads a body in the envelope into the object's JSON, with the envelope's apiVersion and kind. A malformed body,
    /// or a kind without a protobuf form here, is a 400 or a 415 with kube-apiserver's wording; never an exception.
    /// </summary>
    public static JsonObject Decode(byte[] body, int length)
    {
        if (length < Magic.Length || !body.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw ApiError.BadRequest("the body is not protobuf: it does not start with the k8s\\0 prefix");
        }

        try
        {
            var input = new CodedInputStream(body, Magic.Length, length - Magic.Length);
            string apiVersion = string.Empty, kind = string.Empty, encoding = string.Empty;
            ByteString raw = ByteString.Empty;
            for (uint tag; (tag = input.ReadTag()) != 0;)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        var typeMeta = new CodedInputStream(Array(input.ReadBytes()));
                        for (uint t; (t = typeMeta.ReadTag()) != 0;)
                        {
                            switch (WireFormat.GetTagFieldNumber(t))
                            {
                                case 1: apiVersion = typeMeta.ReadString(); break;
                                case 2: kind = typeMeta.ReadString(); break;
                                default: typeMeta.SkipLastField(); break;
                            }
                        }

                        break;
                    case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        raw = input.ReadBytes();
                        break;
                    case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        encoding = input.ReadString();
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }

            if (encoding.Length > 0)
            {
                throw new ApiError(415, "UnsupportedMediaType", $"the body's content encoding \"{encoding}\" is not supported");
            }

            var type = ApiSchema.Default.ForKind(kind)
                ?? throw new ApiError(415, "UnsupportedMediaType", $"no kind \"{kind}\" is registered for the protobuf form of version \"{apiVersion}\"; send it as application/json");
            var obj = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind };
            ReadMessage(ProtobufLayout.Of(type), new CodedInputStream(Array(raw)), obj, 0);
            return obj;
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw ApiError.BadRequest($"the body is not valid protobuf: {ex.Message}");
        }
        catch (NotEncodableException ex)
        {
            throw ApiError.BadRequest($"the body is not valid protobuf: {ex.Message}");
        }
    }

    private static byte[] Array(ByteString bytes) =>
        MemoryMarshal.TryGetArray(bytes.Memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : bytes.ToByteArray();

    private static void ReadMessage(ProtobufLayout layout, CodedInputStream input, JsonObject obj, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new NotEncodableException($"messages nested deeper than {MaxDepth}");
        }

        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            if (!layout.ByNumber.TryGetValue(WireFormat.GetTagFieldNumber(tag), out var slot))
            {
                // A field this version does not know, as Go's generated code skips it.
                input.SkipLastField();
                continue;
            }

            if (slot.Embedded is { } embedded)
            {
                Expect(tag, WireFormat.WireType.LengthDelimited, "an embedded message");
                ReadMessage(embedded, new CodedInputStream(Array(input.ReadBytes())), obj, depth + 1);
                continue;
            }

            var field = slot.Field!;
            var type = field.Type;
            if (type.IsList)
            {
                var list = obj[field.Name] as JsonArray ?? (JsonArray)(obj[field.Name] = new JsonArray());
                if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited && type.Element!.Primitive is "int32" or "int64" or "boolean")
                {
                    // A packed list of numbers: one length, then the values.
                    var packed = new CodedInputStream(Array(input.ReadBytes()));
                    while (!packed.IsAtEnd)
                    {
                        list.Add(type.Element.Primitive switch { "int32" => (JsonNode)packed.ReadInt32(), "int64" => packed.ReadInt64(), _ => packed.ReadBool() });
                    }
                }
                else
                {
                    list.Add(ReadValue(field, type.Element!, tag, input, depth, keepZero: true));
                }
            }
            else if (type.IsMap)
            {
                Expect(tag, WireFormat.WireType.LengthDelimited, "a map entry");
                var entry = new CodedInputStream(Array(input.ReadBytes()));
                var (key, value) = (string.Empty, (JsonNode?)null);
                for (uint t; (t = entry.ReadTag()) != 0;)
                {
                    switch (WireFormat.GetTagFieldNumber(t))
                    {
                        case 1:
                            Expect(t, WireFormat.WireType.LengthDelimited, "a map key");
                            key = entry.ReadString();
                            break;
                        case 2:
                            value = ReadValue(field, type.Element!, t, entry, depth, keepZero: true);
                            break;
                        default:
                            entry.SkipLastField();
                            break;
                    }
                }

                var map = obj[field.Name] as JsonObject ?? (JsonObject)(obj[field.Name] = new JsonObject());
                map[key] = value ?? (type.Element!.Primitive is "string" or "byte" ? JsonValue.Create(string.Empty) : null);
            }
            else if (ReadValue(field, type, tag, input, depth, keepZero: field.ZeroIsValue || field.Required) is { } value)
            {
                obj[field.Name] = value;
            }
        }
    }

    /// <summary>One value; null for a zero scalar that is an absence (an omitempty field Go always writes).</summary>
    private static JsonNode? ReadValue(SchemaField field, FieldType type, uint tag, CodedInputStream input, int depth, bool keepZero)
    {
        if (type.Reference is not null)
        {
            Expect(tag, WireFormat.WireType.LengthDelimited, field.Name);
            var child = new JsonObject();
            ReadMessage(ProtobufLayout.Of(ApiSchema.Default.Resolve(type.Reference)), new CodedInputStream(Array(input.ReadBytes())), child, depth + 1);
            return child;
        }

        switch (type.Primitive)
        {
            case "string":
                Expect(tag, WireFormat.WireType.LengthDelimited, field.Name);
                var text = input.ReadString();
                return text.Length > 0 || keepZero ? JsonValue.Create(text) : null;
            case "int32":
                Expect(tag, WireFormat.WireType.Varint, field.Name);
                var i32 = input.ReadInt32();
                return i32 != 0 || keepZero ? JsonValue.Create(i32) : null;
            case "int64":
                Expect(tag, WireFormat.WireType.Varint, field.Name);
                var i64 = input.ReadInt64();
                return i64 != 0 || keepZero ? JsonValue.Create(i64) : null;
            case "boolean":
                Expect(tag, WireFormat.WireType.Varint, field.Name);
                var flag = input.ReadBool();
                return flag || keepZero ? JsonValue.Create(flag) : null;
            case "number":
                Expect(tag, WireFormat.WireType.Fixed64, field.Name);
                var real = input.ReadDouble();
                if (!double.IsFinite(real))
                {
                    throw new NotEncodableException($"{field.Name} is not a finite number");
                }

                return real != 0 || keepZero ? JsonValue.Create(real) : null;
            case "byte":
                Expect(tag, WireFormat.WireType.LengthDelimited, field.Name);
                var bytes = input.ReadBytes();
                return bytes.Length > 0 || keepZero ? JsonValue.Create(bytes.ToBase64()) : null;
        }

        Expect(tag, WireFormat.WireType.LengthDelimited, field.Name);
        var message = new CodedInputStream(Array(input.ReadBytes()));
        switch (type.Primitive)
        {
            case "quantity":
                var quantity = string.Empty;
                ForEach(message, (n, m) =>
                {
                    if (n == 1)
                    {
                        quantity = m.ReadString();
                    }
                    else
                    {
                        m.SkipLastField();
                    }
                });
                return quantity.Length > 0 || keepZero ? JsonValue.Create(quantity) : null;
            case "intstr":
                long kind = 0;
                var (intVal, strVal) = (0, string.Empty);
                ForEach(message, (n, m) =>
                {
                    switch (n)
                    {
                        case 1: kind = m.ReadInt64(); break;
                        case 2: intVal = m.ReadInt32(); break;
                        case 3: strVal = m.ReadString(); break;
                        default: m.SkipLastField(); break;
                    }
                });
                return kind == 1 ? JsonValue.Create(strVal) : intVal != 0 || keepZero ? JsonValue.Create(intVal) : null;
            case "time":
                var (seconds, nanos) = (0L, 0);
                ForEach(message, (n, m) =>
                {
                    switch (n)
                    {
                        case 1: seconds = m.ReadInt64(); break;
                        case 2: nanos = m.ReadInt32(); break;
                        default: m.SkipLastField(); break;
                    }
                });
                if (seconds == 0 && nanos == 0)
                {
                    return null;
                }

                if (seconds is < -62135596800 or > 253402300799 || nanos is < 0 or > 999_999_999)
                {
                    throw new NotEncodableException($"{field.Name} is not a time: {seconds} s and {nanos} ns");
                }

                // Time is written to the second; MicroTime (whose nanoseconds are set) to the microsecond.
                var at = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
                return JsonValue.Create(at.ToString(nanos == 0 ? "yyyy-MM-dd'T'HH:mm:ss'Z'" : "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
            case "any" when field.RawJson:
                var json = ByteString.Empty;
                ForEach(message, (n, m) =>
                {
                    if (n == 1)
                    {
                        json = m.ReadBytes();
                    }
                    else
                    {
                        m.SkipLastField();
                    }
                });
                try
                {
                    return json.Length == 0 ? null : JsonNode.Parse(json.Span);
                }
                catch (JsonException ex)
                {
                    throw new NotEncodableException($"{field.Name} does not hold JSON: {ex.Message}");
                }

            default:
                throw new NotEncodableException($"{field.Name} has no protobuf form here; send the object as application/json");
        }
    }

    private static void ForEach(CodedInputStream message, Action<int, CodedInputStream> read)
    {
        for (uint tag; (tag = message.ReadTag()) != 0;)
        {
            read(WireFormat.GetTagFieldNumber(tag), message);
        }
    }

    private static void Expect(uint tag, WireFormat.WireType wire, string what)
    {
        if (WireFormat.GetTagWireType(tag) != wire)
        {
            throw new NotEncodableException($"field {WireFormat.GetTagFieldNumber(tag)} ({what}) has wire type {WireFormat.GetTagWireType(tag)}, not {wire}");
        }
    }

    /// <summary>Content that has no protobuf form here, or a protobuf body that does not match the schema.</summary>
    private sealed class NotEncodableException(string message = "no protobuf form") : Exception(message);
}
