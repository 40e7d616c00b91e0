using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// Every message and enum one schema can name — declared in its own file or in a file it imports through its
/// references — by full name (without the leading dot), with what the compatibility check needs to know of each.
/// Field type names in a processed descriptor are fully qualified, so a lookup here is the resolution protoc did.
/// </summary>
internal sealed class ProtobufTypes
{
    private readonly Dictionary<string, ProtobufType> _byName = new(StringComparer.Ordinal);

    private ProtobufTypes()
    {
    }

    public static ProtobufTypes Of(FileDescriptorSet set, FileDescriptorProto main)
    {
        var types = new ProtobufTypes();
        foreach (var file in set.Files)
        {
            var package = file.Package ?? "";
            var proto3 = file.Syntax == "proto3";
            var inMain = ReferenceEquals(file, main);
            var prefix = package.Length == 0 ? "" : package + ".";
            // Nesting is bounded when the text is parsed (SchemaNesting), so the walk needs no recursion guard.
            var pending = new Stack<(DescriptorProto Message, string Name)>(file.MessageTypes.Select(m => (m, prefix + m.Name)));
            foreach (var e in file.EnumTypes) types.Add(new ProtobufType(prefix + e.Name, package, proto3, inMain, null, e));
            while (pending.TryPop(out var next))
            {
                types.Add(new ProtobufType(next.Name, package, proto3, inMain, next.Message, null));
                foreach (var nested in next.Message.NestedTypes) pending.Push((nested, next.Name + "." + nested.Name));
                foreach (var e in next.Message.EnumTypes) types.Add(new ProtobufType(next.Name + "." + e.Name, package, proto3, inMain, null, e));
            }
        }
        return types;
    }

    /// <summary>The type a field's type name denotes, or null when it names nothing known (an unresolved import).</summary>
    public ProtobufType? Find(string? typeName) =>
        typeName is not null && _byName.TryGetValue(typeName.TrimStart('.'), out var type) ? type : null;

    // A later file declaring the same name would have failed to parse; the first declaration stands.
    private void Add(ProtobufType type) => _byName.TryAdd(type.FullName, type);
}

/// <summary>A message or an enum of a schema, where it is declared, and the syntax of its file.</summary>
internal sealed record ProtobufType(string FullName, string Package, bool Proto3, bool InMainFile, DescriptorProto? Message, EnumDescriptorProto? Enum)
{
    /// <summary>The name inside its package (outer messages included), which Confluent compares across packages.</summary>
    public string LocalName => Package.Length == 0 ? FullName : FullName[(Package.Length + 1)..];

    /// <summary>The synthetic message a <c>map&lt;K, V&gt;</c> field stands for (key field 1, value field 2).</summary>
    public bool IsMapEntry => Message?.Options?.MapEntry == true;
}
