using Tributary.Protocol.Records;

namespace Tributary.Storage;

/// <summary>
/// Reading a whole partition back, record by record, as the coordinators and the schema registry do at start to
/// rebuild their state from their internal topics.
/// </summary>
public static class PartitionLogReplay
{
    /// <summary>
    /// Every data record from the log start to the high watermark, in offset order; control batches (transaction
    /// markers) are skipped. Steps over whole batches, so a batch that compaction left empty does not end the replay.
    /// A batch whose records cannot be decoded (corrupt compressed body, bad record framing) is skipped whole and
    /// passed to <paramref name="undecodable"/> with its base offset: as Kafka's loaders, one bad batch must not stop
    /// the state behind it from loading.
    /// </summary>
    public static IEnumerable<DecodedRecord> ReplayRecords(this PartitionLog log, int chunkBytes = 1 << 20, Action<long, Exception>? undecodable = null) =>
        log.ReplayRecords(0, long.MaxValue, chunkBytes, undecodable);

    /// <summary>
    /// As <see cref="ReplayRecords(PartitionLog, int, Action{long, Exception}?)"/>, for the records at offsets from
    /// <paramref name="from"/> (or the log start, if later) up to <paramref name="to"/> (exclusive) and the high
    /// watermark: a reader that follows a partition applies what was added since it last read.
    /// </summary>
    public static IEnumerable<DecodedRecord> ReplayRecords(this PartitionLog log, long from, long to, int chunkBytes = 1 << 20, Action<long, Exception>? undecodable = null)
    {
        foreach (var entry in log.ReplayWithMarkers(from, to, chunkBytes, undecodable))
        {
            if (entry.Marker is null) yield return entry.Record;
        }
    }

    /// <summary>
    /// As <see cref="ReplayRecords(PartitionLog, int, Action{long, Exception}?)"/>, but each record comes with the
    /// producer of its batch when the batch is transactional, and every transaction marker (control batch) comes too,
    /// in its place in the log: what a coordinator that writes transactionally (Kafka's group coordinator, for
    /// TxnOffsetCommit) needs to keep such records pending until their marker says commit or abort. Records above the
    /// last stable offset (undecided transactions) are included: they are below the high watermark, and they are
    /// exactly the pending ones.
    /// </summary>
    public static IEnumerable<ReplayedRecord> ReplayWithMarkers(this PartitionLog log, int chunkBytes = 1 << 20, Action<long, Exception>? undecodable = null) =>
        log.ReplayWithMarkers(0, long.MaxValue, chunkBytes, undecodable);

    /// <summary>As <see cref="ReplayWithMarkers(PartitionLog, int, Action{long, Exception}?)"/>, from <paramref name="from"/> to <paramref name="to"/> (exclusive).</summary>
    public static IEnumerable<ReplayedRecord> ReplayWithMarkers(this PartitionLog log, long from, long to, int chunkBytes = 1 << 20, Action<long, Exception>? undecodable = null)
    {
        var offset = Math.Max(from, log.LogStartOffset);
        while (offset < Math.Min(to, log.HighWatermark))
        {
            var records = new List<ReplayedRecord>();
            var next = offset;
            using (var slice = log.Read(offset, chunkBytes))
            {
                if (slice.IsEmpty) yield break;
                var batches = slice.Memory;
                while (batches.Length >= RecordBatchHeader.HeaderSize)
                {
                    var size = RecordBatchHeader.ReadTotalSize(batches.Span);
                    if (size > batches.Length) break;
                    var batch = batches[..size];
                    var header = new RecordBatchHeader(batch.Span);
                    next = Math.Max(next, header.LastOffset + 1);
                    var producerId = header.IsTransactional ? header.ProducerId : -1;
                    var epoch = header.IsTransactional ? header.ProducerEpoch : (short)-1;
                    if (header.IsControl)
                    {
                        // A marker's one record: key int16 version, int16 type (0 abort, 1 commit). Compaction can leave
                        // a control batch empty; there is nothing to replay then.
                        var type = ProducerStateManager.ControlType(batch.Span);
                        if (header.BaseOffset >= offset && header.BaseOffset < to && type is 0 or 1 && header.IsTransactional)
                            records.Add(new ReplayedRecord(new DecodedRecord(header.BaseOffset, header.MaxTimestamp, null, null, []), producerId, epoch, type == 1));
                    }
                    else
                    {
                        // Records are copied out: the slice's buffer goes back to the pool when this chunk is done.
                        var before = records.Count;
                        try
                        {
                            foreach (var record in RecordReader.ReadAll(batch))
                            {
                                if (record.Offset >= offset && record.Offset < to) records.Add(new ReplayedRecord(Detach(record), producerId, epoch, null));
                            }
                        }
                        catch (Exception e) when (e is not OutOfMemoryException)
                        {
                            // Stored bytes passed the CRC, so any failure here is the batch's content (codecs throw
                            // more than InvalidRecordException on garbage): drop what it yielded and go on.
                            records.RemoveRange(before, records.Count - before);
                            undecodable?.Invoke(header.BaseOffset, e);
                        }
                    }
                    batches = batches[size..];
                }
            }
            foreach (var record in records) yield return record;
            if (next == offset) yield break;
            offset = next;
        }
    }

    private static DecodedRecord Detach(DecodedRecord record) => record with
    {
        Key = Copy(record.Key),
        Value = Copy(record.Value),
        Headers = record.Headers.Count == 0 ? record.Headers : [.. record.Headers.Select(h => h with { Value = Copy(h.Value) })],
    };

    // Spelled out: a null byte[] converted to ReadOnlyMemory<byte>? would become an empty value, not a null one,
    // and a tombstone would come back as an empty record.
    private static ReadOnlyMemory<byte>? Copy(ReadOnlyMemory<byte>? bytes) =>
        bytes is { } b ? new ReadOnlyMemory<byte>(b.ToArray()) : (ReadOnlyMemory<byte>?)null;
}

/// <summary>
/// One entry of <see cref="PartitionLogReplay.ReplayWithMarkers"/>: a data record, or a transaction marker
/// (<see cref="Marker"/> set: true commit, false abort; <see cref="Record"/> then holds only its offset and time).
/// </summary>
/// <param name="ProducerId">The producer of the record's batch when that batch is transactional (or of the marker); -1 otherwise.</param>
/// <param name="ProducerEpoch">That producer's epoch; -1 for a record outside a transaction.</param>
public readonly record struct ReplayedRecord(DecodedRecord Record, long ProducerId, short ProducerEpoch, bool? Marker);
