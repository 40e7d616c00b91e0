using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.SchemaRegistry.Storage;

/// <summary>
/// The registry's log on a partition of the compacted <c>_schemas</c> topic: each change is one record batch built
/// with <see cref="RecordBatchBuilder"/> and appended like any produce, so Kafka clients can read (and copy) it.
/// </summary>
public sealed class PartitionSchemaLog(PartitionLog log, TimeProvider time) : ISchemaLog
{
    private const int ReadChunk = 1 << 20;

    public IEnumerable<(byte[] Key, byte[]? Value)> ReadAll() =>
        [.. log.ReplayRecords(ReadChunk).Where(r => r.Key is not null).Select(r => (r.Key!.Value.ToArray(), r.Value?.ToArray()))];

    public async ValueTask AppendAsync(byte[] key, byte[]? value, CancellationToken cancellationToken = default)
    {
        var batch = new RecordBatchBuilder().Add(time.GetUtcNow().ToUnixTimeMilliseconds(), key, value).Build();
        await log.AppendAsync(batch, cancellationToken).ConfigureAwait(false);
    }
}
