using System.Collections.Concurrent;
using System.Collections.Frozen;

namespace Capstan.LocalCluster.Schema;

/// <summary>
/// A type's protobuf message, from its fields' numbers: each slot is a field, or the message of a Go struct embedded in
/// the type (ProbeHandler in Probe), whose fields are the type's own in JSON.
/// </summary>
internal sealed class ProtobufLayout
{
    private static readonly ConcurrentDictionary<SchemaType, ProtobufLayout> Layouts = new();

    private ProtobufLayout(IEnumerable<(int[] Path, SchemaField Field)> fields, int depth)
    {
        var slots = new List<Slot>();
        foreach (var group in fields.GroupBy(f => f.Path[depth]).OrderBy(g => g.Key))
        {
            var members = group.ToList();
            if (members.Count > 1 && members.Any(m => m.Path.Length == depth + 1))
            {
                throw new FormatException($"api.schema: pb={group.Key} is both a field and an embedded message ({string.Join(", ", members.Select(m => m.Field.Name))})");
            }

            slots.Add(members is [var only] && only.Path.Length == depth + 1
                ? new Slot(group.Key, only.Field, null)
                : new Slot(group.Key, null, new ProtobufLayout(members, depth + 1)));
        }

        Slots = slots;
        ByNumber = slots.ToFrozenDictionary(s => s.Number);
    }

    /// <summary>The slots in field-number order, as Go's marshaller writes them.</summary>
    public IReadOnlyList<Slot> Slots { get; }

    /// <summary>The slots by field number, for reading.</summary>
    public FrozenDictionary<int, Slot> ByNumber { get; }

    /// <summary>The layout of a type (built once).</summary>
    public static ProtobufLayout Of(SchemaType type) =>
        Layouts.GetOrAdd(type, t => new ProtobufLayout(t.Fields.Values.Where(f => f.Protobuf.Count > 0).Select(f => (f.Protobuf.ToArray(), f)), 0));

    /// <summary>A field of the message: a field of the type, or an embedded message holding several.</summary>
    internal sealed record Slot(int Number, SchemaField? Field, ProtobufLayout? Embedded);
}
