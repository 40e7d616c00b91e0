using System.Text.Json;

namespace Tributary.ProtocolGen;

/// <summary>An inclusive range of versions; "none" is the empty range.</summary>
public readonly record struct VersionRange(int Low, int High)
{
    public static readonly VersionRange None = new(int.MaxValue, -1);
    public bool IsEmpty => Low > High;

    public static VersionRange Parse(string? text)
    {
        if (string.IsNullOrEmpty(text) || text == "none") return None;
        if (text.EndsWith('+')) return new(int.Parse(text[..^1]), short.MaxValue);
        var dash = text.IndexOf('-');
        return dash < 0 ? new(int.Parse(text), int.Parse(text)) : new(int.Parse(text[..dash]), int.Parse(text[(dash + 1)..]));
    }

    public VersionRange Intersect(VersionRange other) => new(Math.Max(Low, other.Low), Math.Min(High, other.High));
    public bool Contains(VersionRange other) => other.IsEmpty || (Low <= other.Low && High >= other.High);
}

public sealed class FieldSpec
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public required VersionRange Versions { get; init; }
    public VersionRange NullableVersions { get; init; } = VersionRange.None;
    public VersionRange TaggedVersions { get; init; } = VersionRange.None;
    public VersionRange? FlexibleOverride { get; init; }
    public int? Tag { get; init; }
    public string? Default { get; init; }
    public List<FieldSpec>? Fields { get; init; }

    public bool IsArray => Type.StartsWith("[]", StringComparison.Ordinal);
    public string ElementType => IsArray ? Type[2..] : Type;
    public bool IsStruct => !Primitives.Contains(ElementType);

    public static readonly HashSet<string> Primitives =
        ["bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "uuid", "string", "bytes", "records"];

    public static FieldSpec Parse(JsonElement e) => new()
    {
        Name = e.GetProperty("name").GetString()!,
        Type = e.GetProperty("type").GetString()!,
        Versions = VersionRange.Parse(e.GetProperty("versions").GetString()),
        NullableVersions = e.TryGetProperty("nullableVersions", out var n) ? VersionRange.Parse(n.GetString()) : VersionRange.None,
        TaggedVersions = e.TryGetProperty("taggedVersions", out var t) ? VersionRange.Parse(t.GetString()) : VersionRange.None,
        FlexibleOverride = e.TryGetProperty("flexibleVersions", out var f) ? VersionRange.Parse(f.GetString()) : null,
        Tag = e.TryGetProperty("tag", out var tag) ? (tag.ValueKind == JsonValueKind.String ? int.Parse(tag.GetString()!) : tag.GetInt32()) : null,
        Default = e.TryGetProperty("default", out var d) ? d.ValueKind == JsonValueKind.String ? d.GetString() : d.GetRawText() : null,
        Fields = e.TryGetProperty("fields", out var fs) ? fs.EnumerateArray().Select(Parse).ToList() : null,
    };
}

public sealed class StructSpec
{
    public required string Name { get; init; }
    public required List<FieldSpec> Fields { get; init; }
}

public sealed class MessageSpec
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public int? ApiKey { get; init; }
    public required VersionRange ValidVersions { get; init; }
    public required VersionRange FlexibleVersions { get; init; }
    public required List<FieldSpec> Fields { get; init; }
    public required List<StructSpec> CommonStructs { get; init; }

    public static MessageSpec Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        return new MessageSpec
        {
            Name = root.GetProperty("name").GetString()!,
            Kind = root.GetProperty("type").GetString()!,
            ApiKey = root.TryGetProperty("apiKey", out var k) ? (k.ValueKind == JsonValueKind.String ? int.Parse(k.GetString()!) : k.GetInt32()) : null,
            ValidVersions = VersionRange.Parse(root.GetProperty("validVersions").GetString()),
            FlexibleVersions = VersionRange.Parse(root.GetProperty("flexibleVersions").GetString()),
            Fields = root.GetProperty("fields").EnumerateArray().Select(FieldSpec.Parse).ToList(),
            CommonStructs = root.TryGetProperty("commonStructs", out var cs)
                ? cs.EnumerateArray().Select(s => new StructSpec
                {
                    Name = s.GetProperty("name").GetString()!,
                    Fields = s.GetProperty("fields").EnumerateArray().Select(FieldSpec.Parse).ToList(),
                }).ToList()
                : [],
        };
    }
}
