using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry;

/// <summary>A reference from one schema to another registered schema: the import name, and the subject and version it resolves to.</summary>
public sealed record SchemaReference(string Name, string Subject, int Version);

/// <summary>The content a schema id stands for. Ids are global: equal content registered under two subjects shares one id.</summary>
public sealed record SchemaContent(
    string SchemaType,
    string Schema,
    IReadOnlyList<SchemaReference> References,
    JsonNode? Metadata,
    JsonNode? RuleSet);

/// <summary>One version of a subject. Soft-deleted versions stay (Deleted = true) until permanently deleted.</summary>
public sealed record SubjectVersion(string Subject, int Version, int Id, SchemaContent Content, bool Deleted);

/// <summary>What a client asks to register, look up or check (POST bodies).</summary>
public sealed record SchemaRequest(
    string Schema,
    string SchemaType,
    IReadOnlyList<SchemaReference> References,
    JsonNode? Metadata,
    JsonNode? RuleSet,
    int? Id = null,
    int? Version = null);

public static class SchemaTypes
{
    public const string Avro = "AVRO";
    public const string Json = "JSON";
    public const string Protobuf = "PROTOBUF";

    public static string Normalize(string? type) => string.IsNullOrEmpty(type) ? Avro : type.ToUpperInvariant();
}

/// <summary>Compatibility levels, Confluent's names.</summary>
public enum CompatibilityLevel
{
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

public static class CompatibilityLevels
{
    public static string ToName(CompatibilityLevel level) => level switch
    {
        CompatibilityLevel.None => "NONE",
        CompatibilityLevel.Backward => "BACKWARD",
        CompatibilityLevel.BackwardTransitive => "BACKWARD_TRANSITIVE",
        CompatibilityLevel.Forward => "FORWARD",
        CompatibilityLevel.ForwardTransitive => "FORWARD_TRANSITIVE",
        CompatibilityLevel.Full => "FULL",
        _ => "FULL_TRANSITIVE",
    };

    public static bool TryParse(string? name, out CompatibilityLevel level)
    {
        level = CompatibilityLevel.Backward;
        switch (name?.ToUpperInvariant())
        {
            case "NONE": level = CompatibilityLevel.None; return true;
            case "BACKWARD": level = CompatibilityLevel.Backward; return true;
            case "BACKWARD_TRANSITIVE": level = CompatibilityLevel.BackwardTransitive; return true;
            case "FORWARD": level = CompatibilityLevel.Forward; return true;
            case "FORWARD_TRANSITIVE": level = CompatibilityLevel.ForwardTransitive; return true;
            case "FULL": level = CompatibilityLevel.Full; return true;
            case "FULL_TRANSITIVE": level = CompatibilityLevel.FullTransitive; return true;
            default: return false;
        }
    }

    public static bool IsTransitive(CompatibilityLevel level) =>
        level is CompatibilityLevel.BackwardTransitive or CompatibilityLevel.ForwardTransitive or CompatibilityLevel.FullTransitive;

    public static bool ChecksBackward(CompatibilityLevel level) =>
        level is CompatibilityLevel.Backward or CompatibilityLevel.BackwardTransitive or CompatibilityLevel.Full or CompatibilityLevel.FullTransitive;

    public static bool ChecksForward(CompatibilityLevel level) =>
        level is CompatibilityLevel.Forward or CompatibilityLevel.ForwardTransitive or CompatibilityLevel.Full or CompatibilityLevel.FullTransitive;
}

public static class Modes
{
    public const string ReadWrite = "READWRITE";
    public const string ReadOnly = "READONLY";
    public const string ReadOnlyOverride = "READONLY_OVERRIDE";
    public const string Import = "IMPORT";

    public static bool IsValid(string? mode) => mode is ReadWrite or ReadOnly or ReadOnlyOverride or Import;
}
