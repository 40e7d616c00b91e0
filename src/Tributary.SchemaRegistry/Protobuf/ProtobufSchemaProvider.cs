using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// PROTOBUF schemas: <c>.proto</c> text (proto2 or proto3) parsed by protobuf-net.Reflection. References are the
/// imported files, by import path. Canonical form: the text with line endings unified and outer whitespace trimmed;
/// normalized form: comments removed and whitespace collapsed between tokens (still a valid .proto file). A schema
/// that is not .proto text but a base64 <c>FileDescriptorProto</c> (Confluent's serialized form) is read as the .proto
/// text it describes (<see cref="ProtobufDescriptorText"/>).
/// </summary>
public sealed partial class ProtobufSchemaProvider : ISchemaProvider
{
    private const string MainFile = "__tributary_main.proto";

    public string SchemaType => SchemaTypes.Protobuf;

    public ParsedSchema Parse(string schema, IReadOnlyList<KeyValuePair<string, string>> references)
    {
        try
        {
            return ParseText(schema, references);
        }
        catch (RegistryException) when (ProtobufDescriptorText.TryDecode(schema) is { } descriptor && DescribesSomething(descriptor))
        {
            // Measured before it is written as text (ToProto recurses per nested message); the text is measured again.
            SchemaNesting.Check(ProtobufNesting.Of(descriptor));
            return ParseText(ProtobufDescriptorText.ToProto(descriptor), references);
        }
    }

    /// <summary>Arbitrary base64 can decode as a message of unknown fields; a descriptor worth reading declares something.</summary>
    private static bool DescribesSomething(FileDescriptorProto d) =>
        d.MessageTypes.Count > 0 || d.EnumTypes.Count > 0 || d.Services.Count > 0 || !string.IsNullOrEmpty(d.Syntax) || !string.IsNullOrEmpty(d.Package);

    private static ProtobufParsedSchema ParseText(string schema, IReadOnlyList<KeyValuePair<string, string>> references)
    {
        // protobuf-net's parser recurses once per level: measure every file before it reads one.
        SchemaNesting.Check(ProtobufNesting.Of(schema));
        foreach (var (_, text) in references) SchemaNesting.Check(ProtobufNesting.Of(text));
        var files = references.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
        var set = new FileDescriptorSet { FileSystem = new ReferenceFileSystem(files), AllowNameOnlyImport = true };
        set.AddImportPath("");
        foreach (var (name, text) in files) set.Add(name, false, new StringReader(text));
        set.Add(MainFile, true, new StringReader(schema));
        set.Process();
        var errors = set.GetErrors().Where(e => e.IsError).ToList();
        if (errors.Count > 0)
            throw RegistryException.InvalidSchema($"{schema}, details: {string.Join("; ", errors.Select(e => $"{e.File}({e.LineNumber},{e.ColumnNumber}): {e.Message}"))}");
        var main = set.Files.First(f => f.Name == MainFile);
        var canonical = schema.Replace("\r\n", "\n", StringComparison.Ordinal).Trim();
        return new ProtobufParsedSchema(main, set, canonical, NormalizeText(canonical));
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comments();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\s*([{};=\[\](),<>])\s*")]
    private static partial Regex Punctuation();

    private static string NormalizeText(string text)
    {
        // Strings may hold comment markers; this simple pass accepts that rare imprecision in identity only.
        var withoutComments = Comments().Replace(text, " ");
        var collapsed = Whitespace().Replace(withoutComments, " ");
        return Punctuation().Replace(collapsed, "$1").Trim();
    }

    private sealed class ReferenceFileSystem(IReadOnlyDictionary<string, string> files) : IFileSystem
    {
        public bool Exists(string path) => files.ContainsKey(path);

        public TextReader? OpenText(string path) => files.TryGetValue(path, out var text) ? new StringReader(text) : null;
    }
}

internal sealed class ProtobufParsedSchema(FileDescriptorProto file, FileDescriptorSet set, string canonical, string normalized) : ParsedSchema
{
    public FileDescriptorProto File { get; } = file;

    public FileDescriptorSet Set { get; } = set;

    /// <summary>
    /// The messages and enums this schema can name, its imports' included; built on the first check (two checks at once
    /// may both build it, harmlessly: it never changes once built).
    /// </summary>
    internal ProtobufTypes Types => _types ??= ProtobufTypes.Of(Set, File);

    private ProtobufTypes? _types;

    public override string SchemaType => SchemaTypes.Protobuf;

    public override string Canonical { get; } = canonical;

    public override string Normalized { get; } = normalized;

    /// <summary>Confluent's <c>format=serialized</c>: the file's descriptor, base64.</summary>
    public string Serialized => ProtobufDescriptorText.Encode(File);

    public override IReadOnlyList<string> ReaderIssues(ParsedSchema writer, CancellationToken cancellation = default) =>
        writer is ProtobufParsedSchema w ? ProtobufCompatibility.Check(this, w) : [$"schema types differ: {SchemaType} and {writer.SchemaType}"];
}
