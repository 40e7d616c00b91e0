using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// AVRO schemas. Apache.Avro validates schemas without references (it is the reference parser); Tributary's own
/// model (<see cref="AvroParser"/>) carries references and drives the resolution checks.
/// Canonical form: the JSON re-serialized without insignificant whitespace. Normalized form: every name fully
/// qualified, attributes in a fixed order, docs dropped, defaults, aliases, order and logical types kept.
/// </summary>
public sealed class AvroSchemaProvider : ISchemaProvider
{
    public string SchemaType => SchemaTypes.Avro;

    public ParsedSchema Parse(string schema, IReadOnlyList<KeyValuePair<string, string>> references)
    {
        var parser = new AvroParser();
        try
        {
            foreach (var (_, text) in references)
                parser.Parse(text);
            var root = parser.Parse(schema);
            if (references.Count == 0)
            {
                try
                {
                    global::Avro.Schema.Parse(schema);
                }
                catch (global::Avro.SchemaParseException e)
                {
                    throw new AvroSchemaException(e.Message);
                }
            }
            var canonical = JsonNode.Parse(schema)!.ToJsonString(Http.RegistryJson.Options);
            return new AvroParsedSchema(root, canonical, AvroNormalForm.Write(root), AvroIdentityForm.Write(schema));
        }
        catch (AvroSchemaException e)
        {
            throw RegistryException.InvalidSchema($"{schema}, details: {e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or System.Text.Json.JsonException
            or KeyNotFoundException or InvalidCastException)
        {
            // A shape the parser did not expect (a number where a name belongs, a field without a name): still a schema
            // the client sent wrong, so 422 / 42201 as Confluent answers every invalid schema, never a 500.
            throw RegistryException.InvalidSchema($"{schema}, details: {e.Message}");
        }
    }
}

internal sealed class AvroParsedSchema(AvroType root, string canonical, string normalized, string identity) : ParsedSchema
{
    public AvroType Root { get; } = root;

    public override string SchemaType => SchemaTypes.Avro;

    public override string Canonical { get; } = canonical;

    public override string Normalized { get; } = normalized;

    /// <summary>Attribute order, whitespace and the spelling of names do not count (<see cref="AvroIdentityForm"/>).</summary>
    public override string Identity { get; } = identity;

    public override IReadOnlyList<string> ReaderIssues(ParsedSchema writer, CancellationToken cancellation = default) =>
        writer is AvroParsedSchema w ? AvroCompatibility.Check(Root, w.Root) : [$"schema types differ: {SchemaType} and {writer.SchemaType}"];
}
