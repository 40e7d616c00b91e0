using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// Confluent's Protobuf compatibility rules (its <c>SchemaDiff</c>, <c>MessageSchemaDiff</c> and <c>FieldSchemaDiff</c>),
/// comparing the writer's schema (Confluent's "original") with the reader's ("update"): messages by name, fields by
/// number (names are free to change). Only the differences Confluent counts as incompatible are reported:
/// <list type="bullet">
/// <item>PACKAGE_CHANGED; MESSAGE_REMOVED (a map's entry message is no message of its own). Added or removed enums,
/// enum constants, fields and oneofs are compatible.</item>
/// <item>A field's kind is scalar, message or map, and an enum is a scalar: FIELD_KIND_CHANGED between kinds;
/// FIELD_SCALAR_KIND_CHANGED across the groups {int32, uint32, int64, uint64, bool, every enum}, {sint32, sint64},
/// {fixed32, sfixed32}, {fixed64, sfixed64}, {string, bytes}, {float}, {double}; FIELD_NUMERIC_LABEL_CHANGED when
/// both labels are written and differ on a scalar other than string or bytes (a proto3 field without a label, a oneof
/// member and a map field have none, as in Confluent's parser); a map compares its key and value types.
/// REQUIRED_FIELD_ADDED / REQUIRED_FIELD_REMOVED for fields that come or go.</item>
/// <item>A message field is FIELD_NAMED_TYPE_CHANGED when its type's name within its package differs. Under the same
/// name the two messages are compared themselves when either comes from an import (through the references), so a
/// changed imported message is a change and an identical one in another package or file is none; the differences
/// inside are reported at the message's own path (<c>#/Money/1</c>), with FIELD_NAMED_TYPE_CHANGED at the field.</item>
/// <item>Oneofs, by field number across the whole message: a reader's oneof whose members that already existed
/// come from more than one place (each top-level field is a place, and so is each writer oneof) is
/// MULTIPLE_FIELDS_MOVED_TO_ONEOF when two or more of them were top-level fields, else FIELD_MOVED_TO_EXISTING_ONEOF. A
/// writer's oneof member that is gone is ONEOF_FIELD_REMOVED, unless nothing of its oneof survives (a deleted oneof).
/// So moving one field into a new oneof, renaming a oneof, and moving members out to the top level are compatible;
/// a field's own changes are found wherever it moved.</item>
/// </list>
/// Beyond Confluent, a reader field reusing a number or name the writer reserved is FIELD_USES_RESERVED.
/// <para>
/// Imported messages are compared once per pair of full names, from a work list rather than by recursion, as import
/// chains may be long and cyclic. A pair is incompatible when its own differences, or those of any pair it uses, are;
/// each incompatible pair's differences are reported once. The check stops with 50002 past
/// <see cref="MaxComparisons"/> field comparisons.
/// </para>
/// </summary>
internal sealed class ProtobufCompatibility
{
    /// <summary>Field comparisons one check may make before it gives up: far above any real schema pair.</summary>
    internal const long MaxComparisons = 2_000_000;

    private readonly ProtobufTypes _original;
    private readonly ProtobufTypes _update;
    private readonly Dictionary<(string Original, string Update), ImportedPair> _pairs = [];
    private readonly List<ImportedPair> _pairOrder = [];
    private readonly Queue<ImportedPair> _pending = new();
    private readonly long _limit;
    private long _comparisons;

    private ProtobufCompatibility(ProtobufTypes original, ProtobufTypes update, long limit)
    {
        _original = original;
        _update = update;
        _limit = limit;
    }

    public static IReadOnlyList<string> Check(ProtobufParsedSchema reader, ProtobufParsedSchema writer) => Check(reader, writer, out _);

    /// <param name="comparisons">How many field pairs were compared (what the bound counts).</param>
    /// <param name="limit">The bound (tests lower it).</param>
    internal static IReadOnlyList<string> Check(ProtobufParsedSchema reader, ProtobufParsedSchema writer, out long comparisons, long limit = MaxComparisons)
    {
        var check = new ProtobufCompatibility(writer.Types, reader.Types, limit);
        var root = new List<Finding>();
        if ((writer.File.Package ?? "") != (reader.File.Package ?? "")) root.Add(Issue("PACKAGE_CHANGED", "#/"));
        check.CompareMessages(root, "#", writer.File.MessageTypes, IsProto3(writer.File), reader.File.MessageTypes, IsProto3(reader.File));
        while (check._pending.TryDequeue(out var pair))
        {
            var path = "#/" + pair.Original.LocalName.Replace('.', '/');
            check.CompareMessage(pair.Findings, path, pair.Original.Message!, pair.Original.Proto3, pair.Update.Message!, pair.Update.Proto3);
        }
        comparisons = check._comparisons;
        return check.Report(root);
    }

    private static bool IsProto3(FileDescriptorProto file) => file.Syntax == "proto3";

    /// <summary>A difference, or a field whose imported message pair is judged once every pair has been compared.</summary>
    private readonly record struct Finding(string Text, ImportedPair? Use);

    private sealed class ImportedPair(ProtobufType original, ProtobufType update)
    {
        public ProtobufType Original { get; } = original;

        public ProtobufType Update { get; } = update;

        public List<Finding> Findings { get; } = [];

        public List<ImportedPair> UsedBy { get; } = [];

        public bool Incompatible { get; set; }
    }

    private List<string> Report(List<Finding> root)
    {
        // A pair with differences of its own is incompatible, and so is every pair that uses one (cycles included).
        foreach (var pair in _pairOrder)
            foreach (var finding in pair.Findings)
                finding.Use?.UsedBy.Add(pair);
        var spread = new Queue<ImportedPair>(_pairOrder.Where(p => p.Findings.Any(f => f.Use is null)));
        foreach (var pair in spread) pair.Incompatible = true;
        while (spread.TryDequeue(out var pair))
        {
            foreach (var user in pair.UsedBy.Where(u => !u.Incompatible))
            {
                user.Incompatible = true;
                spread.Enqueue(user);
            }
        }
        var issues = new List<string>();
        void Emit(List<Finding> findings)
        {
            foreach (var f in findings)
            {
                if (f.Use is null) issues.Add(f.Text);
                else if (f.Use.Incompatible) issues.Add(Issue("FIELD_NAMED_TYPE_CHANGED", f.Text).Text);
            }
        }
        Emit(root);
        foreach (var pair in _pairOrder.Where(p => p.Incompatible)) Emit(pair.Findings);
        return issues;
    }

    /// <summary>Messages declared side by side (in a file or a message), matched by name.</summary>
    private void CompareMessages(List<Finding> into, string path, IList<DescriptorProto> originals, bool originalProto3, IList<DescriptorProto> updates, bool updateProto3)
    {
        var updateByName = new Dictionary<string, DescriptorProto>(StringComparer.Ordinal);
        foreach (var u in updates)
            if (u.Options?.MapEntry != true) updateByName.TryAdd(u.Name, u);
        foreach (var o in originals)
        {
            if (o.Options?.MapEntry == true) continue;
            var messagePath = path + "/" + o.Name;
            if (updateByName.TryGetValue(o.Name, out var u)) CompareMessage(into, messagePath, o, originalProto3, u, updateProto3);
            else into.Add(Issue("MESSAGE_REMOVED", messagePath));
        }
    }

    private void CompareMessage(List<Finding> into, string path, DescriptorProto o, bool originalProto3, DescriptorProto u, bool updateProto3)
    {
        var original = new Members(o);
        var update = new Members(u);

        // A writer's oneof none of whose members is left anywhere was deleted as a whole, which is compatible.
        var deleted = original.Oneofs
            .Where(x => !update.Oneofs.Any(y => y.Name == x.Name) && !x.Numbers.Any(update.ByNumber.ContainsKey))
            .Select(x => x.Name)
            .ToHashSet(StringComparer.Ordinal);

        // Members of one reader oneof were mutually exclusive before only if they all come from one writer oneof, or
        // are one former top-level field; brand-new members do not count (old data never set them).
        foreach (var (name, numbers) in update.Oneofs)
        {
            var origins = new HashSet<string>(StringComparer.Ordinal);
            var fromTopLevel = 0;
            foreach (var number in numbers)
            {
                if (original.OneofOf.TryGetValue(number, out var from))
                {
                    origins.Add("oneof " + from);
                }
                else if (original.ByNumber.ContainsKey(number))
                {
                    origins.Add("field " + number);
                    fromTopLevel++;
                }
            }
            if (origins.Count > 1)
                into.Add(Issue(fromTopLevel > 1 ? "MULTIPLE_FIELDS_MOVED_TO_ONEOF" : "FIELD_MOVED_TO_EXISTING_ONEOF", $"{path}/{name}"));
        }

        foreach (var number in original.ByNumber.Keys.Union(update.ByNumber.Keys).Order())
        {
            original.ByNumber.TryGetValue(number, out var of);
            update.ByNumber.TryGetValue(number, out var uf);
            var originalOneof = original.OneofOf.GetValueOrDefault(number);
            var updateOneof = update.OneofOf.GetValueOrDefault(number);
            if (uf is null)
            {
                if (originalOneof is not null)
                {
                    if (!deleted.Contains(originalOneof)) into.Add(Issue("ONEOF_FIELD_REMOVED", $"{path}/{originalOneof}/{number}"));
                }
                else if (WrittenLabel(of!, originalProto3) == FieldDescriptorProto.Label.LabelRequired)
                {
                    into.Add(Issue("REQUIRED_FIELD_REMOVED", $"{path}/{number}"));
                }
            }
            else if (of is null)
            {
                if (updateOneof is null && WrittenLabel(uf, updateProto3) == FieldDescriptorProto.Label.LabelRequired)
                    into.Add(Issue("REQUIRED_FIELD_ADDED", $"{path}/{number}"));
                if (o.ReservedRanges.Any(r => number >= r.Start && number < r.End) || o.ReservedNames.Contains(uf.Name))
                    into.Add(Issue("FIELD_USES_RESERVED", $"{path}/{number}"));
            }
            else
            {
                if (++_comparisons > _limit)
                    throw RegistryException.CheckTooLarge($"the compatibility check compared more than {_limit:N0} pairs of fields");
                var fieldPath = updateOneof is null ? $"{path}/{number}" : $"{path}/{updateOneof}/{number}";
                CompareFieldTypes(into, fieldPath, WrittenLabel(of, originalProto3), WrittenLabel(uf, updateProto3), TypeOf(of, _original), TypeOf(uf, _update));
            }
        }

        CompareMessages(into, path, o.NestedTypes, originalProto3, u.NestedTypes, updateProto3);
    }

    private void CompareFieldTypes(List<Finding> into, string path, FieldDescriptorProto.Label? originalLabel, FieldDescriptorProto.Label? updateLabel, FieldType o, FieldType u)
    {
        if (o.Kind != u.Kind)
        {
            into.Add(Issue("FIELD_KIND_CHANGED", path));
            return;
        }
        switch (o.Kind)
        {
            case Kind.Scalar when o.Scalar != u.Scalar:
                into.Add(Issue("FIELD_SCALAR_KIND_CHANGED", path));
                break;
            case Kind.Scalar:
                if (originalLabel is { } ol && updateLabel is { } ul && ol != ul && o.Scalar != ScalarKind.StringOrBytes)
                    into.Add(Issue("FIELD_NUMERIC_LABEL_CHANGED", path));
                break;
            case Kind.Message:
                CompareMessageTypes(into, path, o, u);
                break;
            case Kind.Map:
                // A map is its key and value types, with no labels of their own.
                foreach (var number in new[] { 1, 2 })
                {
                    var oe = o.Named!.Message!.Fields.FirstOrDefault(f => f.Number == number);
                    var ue = u.Named!.Message!.Fields.FirstOrDefault(f => f.Number == number);
                    if (oe is not null && ue is not null) CompareFieldTypes(into, path, null, null, TypeOf(oe, _original), TypeOf(ue, _update));
                }
                break;
        }
    }

    private void CompareMessageTypes(List<Finding> into, string path, FieldType o, FieldType u)
    {
        if (o.Named is null || u.Named is null)
        {
            // Unresolved on a side: only the spelling is left to compare.
            if (o.Spelling.TrimStart('.') != u.Spelling.TrimStart('.')) into.Add(Issue("FIELD_NAMED_TYPE_CHANGED", path));
            return;
        }
        if (o.Named.LocalName != u.Named.LocalName)
        {
            into.Add(Issue("FIELD_NAMED_TYPE_CHANGED", path));
            return;
        }
        // Messages of the schemas' own files are compared message by message already.
        if (o.Named.InMainFile && u.Named.InMainFile) return;
        var key = (o.Named.FullName, u.Named.FullName);
        if (!_pairs.TryGetValue(key, out var pair))
        {
            pair = new ImportedPair(o.Named, u.Named);
            _pairs.Add(key, pair);
            _pairOrder.Add(pair);
            _pending.Enqueue(pair);
        }
        into.Add(new Finding(path, pair));
    }

    private enum Kind
    {
        Scalar,
        Message,
        Map,
    }

    /// <summary>Confluent's wire-compatible groups of scalar types (enums are general numbers).</summary>
    private enum ScalarKind
    {
        None,
        GeneralNumber,
        SignedNumber,
        StringOrBytes,
        Fixed32,
        Fixed64,
        Float,
        Double,
    }

    private readonly record struct FieldType(Kind Kind, ScalarKind Scalar, ProtobufType? Named, string Spelling);

    private static FieldType TypeOf(FieldDescriptorProto f, ProtobufTypes types)
    {
        if (string.IsNullOrEmpty(f.TypeName)) return new FieldType(Kind.Scalar, ScalarKindOf(f.type), null, "");
        var named = types.Find(f.TypeName);
        if (named?.Enum is not null || (named is null && f.type == FieldDescriptorProto.Type.TypeEnum))
            return new FieldType(Kind.Scalar, ScalarKind.GeneralNumber, named, f.TypeName);
        return new FieldType(named?.IsMapEntry == true ? Kind.Map : Kind.Message, ScalarKind.None, named, f.TypeName);
    }

    private static ScalarKind ScalarKindOf(FieldDescriptorProto.Type type) => type switch
    {
        FieldDescriptorProto.Type.TypeInt32 or FieldDescriptorProto.Type.TypeUint32 or FieldDescriptorProto.Type.TypeInt64
            or FieldDescriptorProto.Type.TypeUint64 or FieldDescriptorProto.Type.TypeBool or FieldDescriptorProto.Type.TypeEnum => ScalarKind.GeneralNumber,
        FieldDescriptorProto.Type.TypeSint32 or FieldDescriptorProto.Type.TypeSint64 => ScalarKind.SignedNumber,
        FieldDescriptorProto.Type.TypeString or FieldDescriptorProto.Type.TypeBytes => ScalarKind.StringOrBytes,
        FieldDescriptorProto.Type.TypeFixed32 or FieldDescriptorProto.Type.TypeSfixed32 => ScalarKind.Fixed32,
        FieldDescriptorProto.Type.TypeFixed64 or FieldDescriptorProto.Type.TypeSfixed64 => ScalarKind.Fixed64,
        FieldDescriptorProto.Type.TypeFloat => ScalarKind.Float,
        FieldDescriptorProto.Type.TypeDouble => ScalarKind.Double,
        _ => ScalarKind.None,
    };

    /// <summary>
    /// The label as written in .proto text, which is what Confluent compares: none for a proto3 field without one,
    /// for a oneof member and for a map field (a map is never compared by label).
    /// </summary>
    private static FieldDescriptorProto.Label? WrittenLabel(FieldDescriptorProto f, bool proto3)
    {
        if (f.Proto3Optional) return FieldDescriptorProto.Label.LabelOptional;
        if (f.ShouldSerializeOneofIndex()) return null;
        return f.label switch
        {
            FieldDescriptorProto.Label.LabelRepeated => FieldDescriptorProto.Label.LabelRepeated,
            FieldDescriptorProto.Label.LabelRequired => FieldDescriptorProto.Label.LabelRequired,
            _ => proto3 ? null : FieldDescriptorProto.Label.LabelOptional,
        };
    }

    /// <summary>A message's fields by number (oneof members included) and its real oneofs (not proto3 optional's).</summary>
    private sealed class Members
    {
        public Dictionary<int, FieldDescriptorProto> ByNumber { get; } = [];

        public Dictionary<int, string> OneofOf { get; } = [];

        public List<(string Name, List<int> Numbers)> Oneofs { get; } = [];

        public Members(DescriptorProto message)
        {
            var oneofs = new Dictionary<int, List<int>>();
            foreach (var f in message.Fields)
            {
                ByNumber.TryAdd(f.Number, f);
                if (!f.ShouldSerializeOneofIndex() || f.Proto3Optional || f.OneofIndex < 0 || f.OneofIndex >= message.OneofDecls.Count) continue;
                OneofOf[f.Number] = message.OneofDecls[f.OneofIndex].Name;
                if (!oneofs.TryGetValue(f.OneofIndex, out var numbers)) oneofs.Add(f.OneofIndex, numbers = []);
                numbers.Add(f.Number);
            }
            foreach (var (index, numbers) in oneofs.OrderBy(x => x.Key)) Oneofs.Add((message.OneofDecls[index].Name, numbers));
        }
    }

    private static Finding Issue(string type, string path) => new($"{{errorType:'{type}', description:'{Describe(type, path)}'}}", null);

    private static string Describe(string type, string path) => type switch
    {
        "PACKAGE_CHANGED" => $"The package at path '{path}' differs between the reader and the writer",
        "MESSAGE_REMOVED" => $"The reader lacks the writer's message at path '{path}'",
        "FIELD_KIND_CHANGED" => $"The field at path '{path}' is of another kind (scalar, message or map) in the reader",
        "FIELD_SCALAR_KIND_CHANGED" => $"The scalar field at path '{path}' has a type of another wire-compatible group in the reader",
        "FIELD_NAMED_TYPE_CHANGED" => $"The message field at path '{path}' has an incompatible message type in the reader",
        "FIELD_NUMERIC_LABEL_CHANGED" => $"The numeric field at path '{path}' has another label in the reader",
        "REQUIRED_FIELD_ADDED" => $"The reader requires a field at path '{path}' that the writer lacks",
        "REQUIRED_FIELD_REMOVED" => $"The reader lacks the writer's required field at path '{path}'",
        "ONEOF_FIELD_REMOVED" => $"The reader lacks the writer's oneof field at path '{path}'",
        "MULTIPLE_FIELDS_MOVED_TO_ONEOF" => $"The reader's oneof at path '{path}' holds several fields that are outside a oneof in the writer",
        "FIELD_MOVED_TO_EXISTING_ONEOF" => $"The reader's oneof at path '{path}' joins fields that the writer keeps in different places",
        "FIELD_USES_RESERVED" => $"The field at path '{path}' reuses a number or name the writer reserved",
        _ => $"Incompatible change at path '{path}'",
    };
}
