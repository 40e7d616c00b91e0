using System.Globalization;
using System.Text;
using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// Confluent's "serialized" form of a Protobuf schema, both ways: a base64 <c>FileDescriptorProto</c>. Clients built
/// on generated code (Confluent's .NET Protobuf serializer) register schemas in this form, and ask for it back with
/// <c>format=serialized</c>. A registered descriptor is stored as .proto text, as Confluent stores it, so ids,
/// lookups and compatibility treat both spellings alike.
/// <para>
/// The text covers what a descriptor of a generated message carries: syntax, package, imports (public too), the
/// common string file options, messages with nested types, map fields, oneofs (proto3 optional as <c>optional</c>),
/// labels, proto2 defaults, packed/deprecated, reserved numbers and names, enums (allow_alias) and services.
/// Extensions and custom options are dropped: they do not change how a message is encoded.
/// </para>
/// </summary>
public static class ProtobufDescriptorText
{
    /// <summary>The file name Confluent gives a serialized schema.</summary>
    public const string SerializedFileName = "default";

    /// <summary>The descriptor a base64 string holds, or null when it is not one.</summary>
    public static FileDescriptorProto? TryDecode(string schema)
    {
        var trimmed = schema.Trim();
        if (trimmed.Length == 0 || trimmed.Length % 4 != 0) return null;
        var bytes = new byte[trimmed.Length / 4 * 3];
        if (!Convert.TryFromBase64String(trimmed, bytes, out var length)) return null;
        try
        {
            using var stream = new MemoryStream(bytes, 0, length);
            return ProtoBuf.Serializer.Deserialize<FileDescriptorProto>(stream);
        }
        catch (ProtoBuf.ProtoException)
        {
            return null;
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }

    public static string Encode(FileDescriptorProto file)
    {
        var copy = ProtoBuf.Serializer.DeepClone(file);
        copy.Name = SerializedFileName;
        using var stream = new MemoryStream();
        ProtoBuf.Serializer.Serialize(stream, copy);
        return Convert.ToBase64String(stream.GetBuffer(), 0, (int)stream.Length);
    }

    public static string ToProto(FileDescriptorProto file)
    {
        var w = new StringBuilder();
        var syntax = string.IsNullOrEmpty(file.Syntax) ? "proto2" : file.Syntax;
        w.Append("syntax = \"").Append(syntax).Append("\";\n");
        if (!string.IsNullOrEmpty(file.Package)) w.Append("package ").Append(file.Package).Append(";\n");
        var publicDependencies = new HashSet<int>(file.PublicDependencies ?? []);
        for (var i = 0; i < file.Dependencies.Count; i++)
            w.Append(publicDependencies.Contains(i) ? "import public \"" : "import \"").Append(Escape(file.Dependencies[i])).Append("\";\n");
        if (file.Options is { } o)
        {
            Option(w, "java_package", o.JavaPackage);
            Option(w, "java_outer_classname", o.JavaOuterClassname);
            if (o.JavaMultipleFiles) w.Append("option java_multiple_files = true;\n");
            Option(w, "go_package", o.GoPackage);
            Option(w, "csharp_namespace", o.CsharpNamespace);
            Option(w, "objc_class_prefix", o.ObjcClassPrefix);
            Option(w, "php_namespace", o.PhpNamespace);
            Option(w, "ruby_package", o.RubyPackage);
        }
        var proto3 = syntax == "proto3";
        foreach (var m in file.MessageTypes) Message(w, m, 0, proto3);
        foreach (var e in file.EnumTypes) Enum(w, e, 0);
        foreach (var s in file.Services)
        {
            w.Append("\nservice ").Append(s.Name).Append(" {\n");
            foreach (var method in s.Methods)
            {
                w.Append("  rpc ").Append(method.Name).Append(" (").Append(method.ClientStreaming ? "stream " : "").Append(method.InputType)
                    .Append(") returns (").Append(method.ServerStreaming ? "stream " : "").Append(method.OutputType).Append(");\n");
            }
            w.Append("}\n");
        }
        return w.ToString();
    }

    private static void Option(StringBuilder w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value)) w.Append("option ").Append(name).Append(" = \"").Append(Escape(value)).Append("\";\n");
    }

    private static void Message(StringBuilder w, DescriptorProto m, int depth, bool proto3)
    {
        var indent = new string(' ', depth * 2);
        w.Append('\n').Append(indent).Append("message ").Append(m.Name).Append(" {\n");
        var inner = indent + "  ";
        var maps = m.NestedTypes.Where(n => n.Options?.MapEntry == true).ToDictionary(n => n.Name, StringComparer.Ordinal);
        // A oneof is written where its first field stands, so the fields keep their descriptor order.
        var printedOneofs = new HashSet<int>();
        foreach (var f in m.Fields)
        {
            if (!f.ShouldSerializeOneofIndex() || f.Proto3Optional)
            {
                Field(w, inner, f, maps, proto3, inOneof: false);
                continue;
            }
            if (!printedOneofs.Add(f.OneofIndex)) continue;
            w.Append(inner).Append("oneof ").Append(m.OneofDecls[f.OneofIndex].Name).Append(" {\n");
            foreach (var member in m.Fields.Where(x => x.ShouldSerializeOneofIndex() && !x.Proto3Optional && x.OneofIndex == f.OneofIndex))
                Field(w, inner + "  ", member, maps, proto3, inOneof: true);
            w.Append(inner).Append("}\n");
        }
        if (m.ReservedRanges.Count > 0)
            w.Append(inner).Append("reserved ").Append(string.Join(", ", m.ReservedRanges.Select(r => Range(r.Start, r.End - 1)))).Append(";\n");
        if (m.ReservedNames.Count > 0)
            w.Append(inner).Append("reserved ").Append(string.Join(", ", m.ReservedNames.Select(n => $"\"{Escape(n)}\""))).Append(";\n");
        foreach (var nested in m.NestedTypes)
            if (nested.Options?.MapEntry != true) Message(w, nested, depth + 1, proto3);
        foreach (var e in m.EnumTypes) Enum(w, e, depth + 1);
        w.Append(indent).Append("}\n");
    }

    private static void Field(StringBuilder w, string indent, FieldDescriptorProto f, Dictionary<string, DescriptorProto> maps, bool proto3, bool inOneof)
    {
        w.Append(indent);
        var entryName = f.TypeName?[(f.TypeName.LastIndexOf('.') + 1)..];
        if (f.label == FieldDescriptorProto.Label.LabelRepeated && entryName is not null && maps.TryGetValue(entryName, out var entry))
        {
            var key = entry.Fields.First(x => x.Number == 1);
            var value = entry.Fields.First(x => x.Number == 2);
            w.Append("map<").Append(TypeOf(key)).Append(", ").Append(TypeOf(value)).Append("> ");
        }
        else
        {
            if (!inOneof)
            {
                if (f.label == FieldDescriptorProto.Label.LabelRepeated) w.Append("repeated ");
                else if (f.label == FieldDescriptorProto.Label.LabelRequired) w.Append("required ");
                else if (!proto3 || f.Proto3Optional) w.Append("optional ");
            }
            w.Append(TypeOf(f)).Append(' ');
        }
        w.Append(f.Name).Append(" = ").Append(f.Number.ToString(CultureInfo.InvariantCulture));
        var options = new List<string>();
        if (!string.IsNullOrEmpty(f.DefaultValue))
            options.Add("default = " + (f.type is FieldDescriptorProto.Type.TypeString or FieldDescriptorProto.Type.TypeBytes ? $"\"{Escape(f.DefaultValue)}\"" : f.DefaultValue));
        if (f.Options is { } o)
        {
            if (o.ShouldSerializePacked()) options.Add(o.Packed ? "packed = true" : "packed = false");
            if (o.Deprecated) options.Add("deprecated = true");
        }
        if (options.Count > 0) w.Append(" [").Append(string.Join(", ", options)).Append(']');
        w.Append(";\n");
    }

    private static string TypeOf(FieldDescriptorProto f) => f.type switch
    {
        FieldDescriptorProto.Type.TypeMessage or FieldDescriptorProto.Type.TypeEnum or FieldDescriptorProto.Type.TypeGroup => f.TypeName,
        _ => f.type.ToString()["Type".Length..].ToLowerInvariant(),
    };

    private static void Enum(StringBuilder w, EnumDescriptorProto e, int depth)
    {
        var indent = new string(' ', depth * 2);
        w.Append('\n').Append(indent).Append("enum ").Append(e.Name).Append(" {\n");
        var inner = indent + "  ";
        if (e.Options?.AllowAlias == true) w.Append(inner).Append("option allow_alias = true;\n");
        foreach (var v in e.Values) w.Append(inner).Append(v.Name).Append(" = ").Append(v.Number.ToString(CultureInfo.InvariantCulture)).Append(";\n");
        if (e.ReservedRanges.Count > 0)
            w.Append(inner).Append("reserved ").Append(string.Join(", ", e.ReservedRanges.Select(r => Range(r.Start, r.End)))).Append(";\n");
        if (e.ReservedNames.Count > 0)
            w.Append(inner).Append("reserved ").Append(string.Join(", ", e.ReservedNames.Select(n => $"\"{Escape(n)}\""))).Append(";\n");
        w.Append(indent).Append("}\n");
    }

    /// <summary>An inclusive range in .proto syntax; 536870911 is the largest field number ("max").</summary>
    private static string Range(int start, int endInclusive) =>
        start == endInclusive ? start.ToString(CultureInfo.InvariantCulture)
        : endInclusive >= 536870911 || endInclusive == int.MaxValue ? $"{start} to max"
        : $"{start} to {endInclusive}";

    private static string Escape(string text) => text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
