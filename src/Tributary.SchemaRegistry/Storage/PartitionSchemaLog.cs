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

    public IEnumerable<(byte[] Key, byte[]? Value)> ReadAll()
    {
        var result = new List<(byte[], byte[]?)>();
        var offset = log.LogStartOffset;
        while (offset < log.HighWatermark)
        {
            using var slice = log.Read(offset, ReadChunk);
            if (slice.IsEmpty) break;
            foreach (var record in RecordReader.ReadAllBatches(slice.Memory))
            {
                if (record.Offset < offset) continue;
                if (record.Key is { } key) result.Add((key.ToArray(), record.Value?.ToArray()));
            }
            // Move on by whole batches, not by the last record: compaction can leave a batch with no records left,
            // and replay must step over it rather than stop there.
            var next = offset;
            var bytes = slice.Memory.Span;
            while (bytes.Length >= RecordBatchHeader.HeaderSize)
            {
                var header = new RecordBatchHeader(bytes);
                if (header.TotalSize > bytes.Length) break;
                next = Math.Max(next, header.LastOffset + 1);
                bytes = bytes[header.TotalSize..];
            }
            if (next == offset) break;
            offset = next;
        }
        return result;
    }

    public async ValueTask AppendAsync(byte[] key, byte[]? value, CancellationToken cancellationToken = default)
    {
        var batch = new RecordBatchBuilder().Add(time.GetUtcNow().ToUnixTimeMilliseconds(), key, value).Build();
        await log.AppendAsync(batch, cancellationToken).ConfigureAwait(false);
    }
}
