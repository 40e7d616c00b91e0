using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// Confluent's Protobuf compatibility rules, comparing the writer's file with the reader's message by message (by
/// full name) and field by field (by number — names are free to change). Incompatible:
/// PACKAGE_CHANGED; MESSAGE_REMOVED; FIELD_KIND_CHANGED (scalar vs message vs enum); FIELD_SCALAR_KIND_CHANGED
/// outside the wire-compatible groups {int32, uint32, int64, uint64, bool}, {sint32, sint64}, {fixed32, sfixed32},
/// {fixed64, sfixed64}, {string, bytes}; FIELD_NAMED_TYPE_CHANGED; REQUIRED_FIELD_ADDED / REQUIRED_FIELD_REMOVED;
/// FIELD_LABEL_CHANGED between singular and repeated (except for length-delimited types, where it is allowed for
/// string, bytes and messages); ONEOF_FIELD_REMOVED; FIELD_MOVED_TO_EXISTING_ONEOF; MULTIPLE_FIELDS_MOVED_TO_ONEOF;
/// ENUM_CONST_REMOVED is allowed only when the reader keeps the number reserved. Adding or removing fields, messages,
/// enums, enum constants and oneofs is compatible. Reserved field numbers or names reused with another meaning are
/// reported (FIELD_USES_RESERVED).
/// </summary>
internal static class ProtobufCompatibility
{
    private static readonly FieldDescriptorProto.Type[][] CompatibleGroups =
    [
        [FieldDescriptorProto.Type.TypeInt32, FieldDescriptorProto.Type.TypeUint32, FieldDescriptorProto.Type.TypeInt64, FieldDescriptorProto.Type.TypeUint64, FieldDescriptorProto.Type.TypeBool],
        [FieldDescriptorProto.Type.TypeSint32, FieldDescriptorProto.Type.TypeSint64],
        [FieldDescriptorProto.Type.TypeFixed32, FieldDescriptorProto.Type.TypeSfixed32],
        [FieldDescriptorProto.Type.TypeFixed64, FieldDescriptorProto.Type.TypeSfixed64],
        [FieldDescriptorProto.Type.TypeString, FieldDescriptorProto.Type.TypeBytes],
    ];

    public static IReadOnlyList<string> Check(ProtobufParsedSchema reader, ProtobufParsedSchema writer)
    {
        var issues = new List<string>();
        void Add(string type, string path, string detail) => issues.Add($"{{errorType:'{type}', description:'{detail} at path '{path}''}}");

        if ((writer.File.Package ?? "") != (reader.File.Package ?? ""))
            Add("PACKAGE_CHANGED", "#/", $"The package changed from '{writer.File.Package}' to '{reader.File.Package}'");
        var readerMessages = Messages(reader.File);
        var writerMessages = Messages(writer.File);
        foreach (var (name, wm) in writerMessages)
        {
            if (!readerMessages.TryGetValue(name, out var rm))
            {
                Add("MESSAGE_REMOVED", "#/" + name, $"Message {name} was removed");
                continue;
            }
            var path = "#/" + name;
            var rFields = rm.Fields.ToDictionary(f => f.Number);
            foreach (var wf in wm.Fields)
            {
                var fpath = $"{path}/{wf.Number}";
                if (!rFields.TryGetValue(wf.Number, out var rf))
                {
                    if (wf.label == FieldDescriptorProto.Label.LabelRequired) Add("REQUIRED_FIELD_REMOVED", fpath, $"Required field {wf.Name} was removed");
                    if (InOneof(wf) && !IsSyntheticOneof(wm, wf)) Add("ONEOF_FIELD_REMOVED", fpath, $"Field {wf.Name} was removed from oneof {wm.OneofDecls[wf.OneofIndex].Name}");
                    continue;
                }
                var wKind = Kind(wf);
                var rKind = Kind(rf);
                if (wKind != rKind)
                    Add("FIELD_KIND_CHANGED", fpath, $"Field {wf.Number} changed kind from {wKind} to {rKind}");
                else if (wKind == "scalar" && wf.type != rf.type && !CompatibleGroups.Any(g => g.Contains(wf.type) && g.Contains(rf.type)))
                    Add("FIELD_SCALAR_KIND_CHANGED", fpath, $"Field {wf.Number} changed type from {TypeName(wf)} to {TypeName(rf)}");
                else if (wKind != "scalar" && Strip(wf.TypeName) != Strip(rf.TypeName))
                    Add("FIELD_NAMED_TYPE_CHANGED", fpath, $"Field {wf.Number} changed type from {Strip(wf.TypeName)} to {Strip(rf.TypeName)}");
                var wRepeated = wf.label == FieldDescriptorProto.Label.LabelRepeated;
                var rRepeated = rf.label == FieldDescriptorProto.Label.LabelRepeated;
                if (wRepeated != rRepeated && !(wf.type is FieldDescriptorProto.Type.TypeString or FieldDescriptorProto.Type.TypeBytes or FieldDescriptorProto.Type.TypeMessage))
                    Add("FIELD_LABEL_CHANGED", fpath, $"Field {wf.Number} changed between singular and repeated");
                if (rf.label == FieldDescriptorProto.Label.LabelRequired && wf.label != FieldDescriptorProto.Label.LabelRequired)
                    Add("REQUIRED_FIELD_ADDED", fpath, $"Field {rf.Name} became required");
                var wOneof = InOneof(wf) && !IsSyntheticOneof(wm, wf) ? wm.OneofDecls[wf.OneofIndex].Name : null;
                var rOneof = InOneof(rf) && !IsSyntheticOneof(rm, rf) ? rm.OneofDecls[rf.OneofIndex].Name : null;
                if (wOneof is null && rOneof is not null)
                {
                    var oneofExisted = wm.OneofDecls.Any(o => o.Name == rOneof);
                    if (oneofExisted)
                        Add("FIELD_MOVED_TO_EXISTING_ONEOF", fpath, $"Field {rf.Name} moved into existing oneof {rOneof}");
                }
            }
            // several existing fields moved together into a new oneof
            foreach (var group in rm.Fields.Where(f => InOneof(f) && !IsSyntheticOneof(rm, f)).GroupBy(f => f.OneofIndex))
            {
                var oneofName = rm.OneofDecls[group.Key].Name;
                if (wm.OneofDecls.Any(o => o.Name == oneofName)) continue;
                var moved = group.Count(f => wm.Fields.Any(wf => wf.Number == f.Number && !(InOneof(wf) && !IsSyntheticOneof(wm, wf))));
                if (moved > 1) Add("MULTIPLE_FIELDS_MOVED_TO_ONEOF", $"{path}/{oneofName}", $"{moved} existing fields moved into new oneof {oneofName}");
            }
            foreach (var rf in rm.Fields.Where(f => !wm.Fields.Any(wf => wf.Number == f.Number)))
            {
                if (rf.label == FieldDescriptorProto.Label.LabelRequired) Add("REQUIRED_FIELD_ADDED", $"{path}/{rf.Number}", $"Required field {rf.Name} was added");
                if (wm.ReservedRanges.Any(r => rf.Number >= r.Start && rf.Number < r.End) || wm.ReservedNames.Contains(rf.Name))
                    Add("FIELD_USES_RESERVED", $"{path}/{rf.Number}", $"Field {rf.Name} ({rf.Number}) reuses a number or name the writer reserved");
            }
        }
        return issues;
    }

    private static bool InOneof(FieldDescriptorProto f) => f.ShouldSerializeOneofIndex();

    private static bool IsSyntheticOneof(DescriptorProto m, FieldDescriptorProto f) => f.Proto3Optional;

    private static string Kind(FieldDescriptorProto f) => f.type switch
    {
        FieldDescriptorProto.Type.TypeMessage or FieldDescriptorProto.Type.TypeGroup => "message",
        FieldDescriptorProto.Type.TypeEnum => "enum",
        _ => "scalar",
    };

    private static string TypeName(FieldDescriptorProto f) => f.type.ToString()["Type".Length..].ToLowerInvariant();

    private static string Strip(string? typeName) => (typeName ?? "").TrimStart('.');

    private static Dictionary<string, DescriptorProto> Messages(FileDescriptorProto file)
    {
        var result = new Dictionary<string, DescriptorProto>(StringComparer.Ordinal);
        void Walk(IEnumerable<DescriptorProto> messages, string prefix)
        {
            foreach (var m in messages)
            {
                var name = prefix + m.Name;
                result[name] = m;
                Walk(m.NestedTypes, name + ".");
            }
        }
        Walk(file.MessageTypes, string.IsNullOrEmpty(file.Package) ? "" : file.Package + ".");
        return result;
    }
}
