using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;
using Google.Protobuf;

namespace Capstan.LocalCluster.Schema;

/// <content>Reading: a protobuf body into the object's JSON, by the schema's field numbers.</content>
internal static partial class Protobuf
{
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
}
