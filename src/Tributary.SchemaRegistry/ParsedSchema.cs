namespace Tributary.SchemaRegistry;

/// <summary>
/// A schema after parsing by its type's provider. <see cref="Canonical"/> decides identity when registering and looking up
/// (whitespace and layout do not matter); <see cref="Normalized"/> is the stronger form used with <c>normalize=true</c>
/// (equivalent spellings of one schema become equal).
/// </summary>
public abstract class ParsedSchema
{
    public abstract string SchemaType { get; }

    public abstract string Canonical { get; }

    public abstract string Normalized { get; }

    /// <summary>
    /// What makes two texts the same schema when normalize is off, as Confluent's canonical string does; by default
    /// <see cref="Canonical"/>. Register and lookup compare it; the stored text stays <see cref="Canonical"/>.
    /// </summary>
    public virtual string Identity => Canonical;

    /// <summary>
    /// Why a consumer using this schema (the reader) cannot read data written with <paramref name="writer"/>;
    /// empty when it can. Backward compatibility is new.ReaderIssues(old); forward is old.ReaderIssues(new).
    /// <paramref name="cancellation"/> stops a check whose client has gone (the JSON Schema check heeds it; the Avro and
    /// Protobuf checks are linear in the schemas and end soon anyway).
    /// </summary>
    public abstract IReadOnlyList<string> ReaderIssues(ParsedSchema writer, CancellationToken cancellation = default);
}

/// <summary>Parses one schema type. References arrive resolved: import name to schema text, transitive ones included.</summary>
public interface ISchemaProvider
{
    string SchemaType { get; }

    /// <exception cref="RegistryException">42201 when the text is not a valid schema of this type.</exception>
    ParsedSchema Parse(string schema, IReadOnlyList<KeyValuePair<string, string>> references);
}
