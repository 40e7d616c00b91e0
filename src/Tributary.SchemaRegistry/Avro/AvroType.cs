using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// Tributary's own model of an Avro schema, built for resolution checks. Named types are shared objects, so a
/// recursive schema is a cyclic graph and a type referenced twice is one instance (the checker memoizes on pairs).
/// </summary>
internal abstract class AvroType
{
    /// <summary>null, boolean, int, long, float, double, bytes, string, record, enum, fixed, array, map or union.</summary>
    public abstract string Kind { get; }

    public string? LogicalType { get; init; }

    /// <summary>Attributes of the logical type (decimal's precision and scale), kept for the normalized form.</summary>
    public int? Precision { get; init; }

    public int? Scale { get; init; }
}

internal sealed class AvroPrimitive(string kind) : AvroType
{
    public override string Kind { get; } = kind;
}

internal abstract class AvroNamed(string fullName, IReadOnlyList<string> aliases) : AvroType
{
    public string FullName { get; } = fullName;

    public string Name => FullName.Contains('.') ? FullName[(FullName.LastIndexOf('.') + 1)..] : FullName;

    public string? Namespace => FullName.Contains('.') ? FullName[..FullName.LastIndexOf('.')] : null;

    /// <summary>Fully qualified aliases.</summary>
    public IReadOnlyList<string> Aliases { get; } = aliases;
}

internal sealed record AvroField(string Name, IReadOnlyList<string> Aliases, AvroType Type, JsonNode? Default, bool HasDefault, string? Order);

internal sealed class AvroRecord(string fullName, IReadOnlyList<string> aliases, bool isError) : AvroNamed(fullName, aliases)
{
    public override string Kind => "record";

    public bool IsError { get; } = isError;

    public List<AvroField> Fields { get; } = [];
}

internal sealed class AvroEnum(string fullName, IReadOnlyList<string> aliases, IReadOnlyList<string> symbols, string? defaultSymbol) : AvroNamed(fullName, aliases)
{
    public override string Kind => "enum";

    public IReadOnlyList<string> Symbols { get; } = symbols;

    public string? Default { get; } = defaultSymbol;
}

internal sealed class AvroFixed(string fullName, IReadOnlyList<string> aliases, int size) : AvroNamed(fullName, aliases)
{
    public override string Kind => "fixed";

    public int Size { get; } = size;
}

internal sealed class AvroArray(AvroType items) : AvroType
{
    public override string Kind => "array";

    public AvroType Items { get; } = items;
}

internal sealed class AvroMap(AvroType values) : AvroType
{
    public override string Kind => "map";

    public AvroType Values { get; } = values;
}

internal sealed class AvroUnion(IReadOnlyList<AvroType> branches) : AvroType
{
    public override string Kind => "union";

    public IReadOnlyList<AvroType> Branches { get; } = branches;
}
