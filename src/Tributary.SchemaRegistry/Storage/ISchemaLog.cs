namespace Tributary.SchemaRegistry.Storage;

/// <summary>
/// Where the registry keeps its history: an ordered log of key/value records (value null = tombstone), read whole at
/// start and appended to on every change. The broker supplies the <c>_schemas</c> partition; tests may use memory.
/// </summary>
public interface ISchemaLog
{
    /// <summary>Every record, oldest first.</summary>
    IEnumerable<(byte[] Key, byte[]? Value)> ReadAll();

    /// <summary>Appends durably: when this completes the record survives a restart.</summary>
    ValueTask AppendAsync(byte[] key, byte[]? value, CancellationToken cancellationToken = default);
}

/// <summary>A log in memory, for tests.</summary>
public sealed class MemorySchemaLog : ISchemaLog
{
    private readonly List<(byte[] Key, byte[]? Value)> _records = [];

    public IEnumerable<(byte[] Key, byte[]? Value)> ReadAll()
    {
        lock (_records) return _records.ToList();
    }

    public ValueTask AppendAsync(byte[] key, byte[]? value, CancellationToken cancellationToken = default)
    {
        lock (_records) _records.Add((key, value));
        return ValueTask.CompletedTask;
    }
}
