namespace Tributary.SchemaRegistry;

/// <summary>
/// The bound on every recursion over a schema, so that no input can overflow the stack (which .NET cannot catch: the
/// process dies). A schema nested deeper than <see cref="MaxDepth"/> levels is refused with 42201.
/// <list type="bullet">
/// <item>Schema text that is JSON (AVRO, JSON Schema, request bodies) is parsed with System.Text.Json's default
/// <c>MaxDepth</c> of 64, so walks over the text itself (Avro parsing, sorting keys, JsonSchema.Net's meta-schema check)
/// are bounded by that.</item>
/// <item>Walks that follow names and <c>$ref</c>s can go deeper than the text (a chain of definitions, each naming the
/// next): Avro's compatibility check and normal form, JSON Schema's compatibility check, and reference resolution
/// count their depth and stop at <see cref="MaxDepth"/>.</item>
/// <item>.proto text is parsed by protobuf-net.Reflection's recursive parser, so its bracket nesting is measured first
/// (<see cref="Protobuf.ProtobufNesting"/>); a descriptor (the serialized form) is measured before it is written as
/// text.</item>
/// </list>
/// 128 is far beyond real schemas (nesting of ten or twenty levels is already rare) and keeps the deepest walk well
/// inside a thread pool thread's stack.
/// </summary>
public static class SchemaNesting
{
    public const int MaxDepth = 128;

    /// <exception cref="RegistryException">42201 when <paramref name="depth"/> exceeds <see cref="MaxDepth"/>.</exception>
    public static void Check(int depth)
    {
        if (depth > MaxDepth) throw TooDeep();
    }

    /// <summary>The schema is not quoted back: a schema this deep is usually large.</summary>
    public static RegistryException TooDeep() => new(42201, $"Invalid schema: schema nesting exceeds {MaxDepth} levels");
}
