using System.Buffers.Binary;
using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Per-partition producer state: what makes idempotent and transactional produce work.
///
/// Append (called under the log's append lock, after offsets are assigned and before the bytes are written):
/// <see cref="Prepare"/> checks every batch that carries a producer id against a copy of that producer's entry —
/// a batch equal (epoch, first and last sequence) to one of the last five is a duplicate, answered with the original
/// offsets and not written; an older epoch is INVALID_PRODUCER_EPOCH; a sequence that does not follow the last one
/// (or a new epoch not starting at 0) is OUT_OF_ORDER_SEQUENCE_NUMBER; a producer with no state at all is accepted
/// at any sequence (its state may have expired or been removed with old segments, as in Kafka). Once the write
/// succeeded, <see cref="Commit"/> installs the copies, so a failed write changes nothing.
///
/// Transactions: a producer's first transactional batch opens its transaction at that offset; a control batch
/// (commit or abort marker) closes it. The last stable offset is the smallest of the high watermark, the first
/// offset of every open transaction and of every closed one whose marker is not yet below the high watermark (so an
/// abort whose marker is not yet durable never exposes the aborted records as stable). An abort adds an entry to the
/// <see cref="AbortedTxnIndex"/>, which read_committed fetches return.
///
/// Threads: the append path and readers (fetch, LSO, DescribeProducers) share this object; one small lock guards it,
/// taken inside the log's append lock and never around IO other than the aborted index's unsynced append.
/// </summary>
internal sealed class ProducerStateManager : IDisposable
{
    private readonly object _sync = new();
    private readonly string _directory;
    private readonly ISegmentFileSystem _fs;
    private readonly Dictionary<long, ProducerStateEntry> _producers = [];
    private readonly SortedDictionary<long, long> _ongoing = [];
    private readonly List<(long FirstOffset, long MarkerOffset)> _unreplicated = [];
    private readonly AbortedTxnIndex _aborted;
    private long _lastExpiryCheckMs;

    private ProducerStateManager(ISegmentFileSystem fs, string directory, AbortedTxnIndex aborted)
    {
        _fs = fs;
        _directory = directory;
        _aborted = aborted;
    }

    /// <summary>producer.id.expiration.ms: a producer without an open transaction is forgotten this long after its last write.</summary>
    public long ExpirationMs { get; set; } = 86_400_000;

    /// <summary>The changes one append makes, installed by <see cref="Commit"/> after the write succeeded.</summary>
    public sealed class PendingAppend
    {
        internal Dictionary<long, ProducerStateEntry> Entries { get; } = [];
        internal List<(long FirstOffset, long ProducerId)> Opened { get; } = [];
        internal List<(long ProducerId, long FirstOffset, long MarkerOffset, bool Aborted)> Closed { get; } = [];
    }

    /// <summary>
    /// Checks the batches of one append (offsets already assigned). Returns null when no batch carries a producer
    /// id; sets <paramref name="duplicate"/> when a batch repeats one already written.
    /// </summary>
    /// <exception cref="StorageException">OutOfOrderSequence, InvalidProducerEpoch, InvalidTxnState.</exception>
    /// <param name="origin">A coordinator's batches (<see cref="AppendOrigin.Coordinator"/>) skip the sequence checks.</param>
    public PendingAppend? Prepare(ReadOnlySpan<byte> batches, long nowMs, AppendOrigin origin, out ProducerBatch? duplicate)
    {
        duplicate = null;
        PendingAppend? pending = null;
        for (int position = 0; position < batches.Length;)
        {
            var bytes = batches[position..];
            var header = new RecordBatchHeader(bytes);
            int size = header.TotalSize;
            position += size;
            if (header.ProducerId < 0)
            {
                continue;
            }

            pending ??= new PendingAppend();
            duplicate = PrepareBatch(pending, header, bytes[..size], nowMs, coordinator: origin == AppendOrigin.Coordinator,
                bumpingMarker: origin == AppendOrigin.EpochBumpingMarker);
            if (duplicate is not null)
            {
                return pending;
            }
        }

        return pending;
    }

    /// <summary>
    /// A follower's append (Kafka's REPLICATION origin): records what the leader accepted, with the leader's offsets,
    /// without checking epochs, sequences or transaction state and without answering duplicates — the leader decided, and
    /// a follower refusing would diverge from it. Transactions open and close (and aborts reach the index) as on the leader.
    /// </summary>
    public PendingAppend? PrepareReplicated(ReadOnlySpan<byte> batches, long nowMs)
    {
        PendingAppend? pending = null;
        for (int position = 0; position < batches.Length;)
        {
            var bytes = batches[position..];
            var header = new RecordBatchHeader(bytes);
            int size = header.TotalSize;
            position += size;
            if (header.ProducerId >= 0)
            {
                PrepareBatch(pending ??= new PendingAppend(), header, bytes[..size], nowMs, replicated: true);
            }
        }

        return pending;
    }

    private ProducerBatch? PrepareBatch(PendingAppend pending, RecordBatchHeader header, ReadOnlySpan<byte> batch, long nowMs, bool replicated = false,
        bool coordinator = false, bool bumpingMarker = false)
    {
        long pid = header.ProducerId;
        if (!pending.Entries.TryGetValue(pid, out var entry))
        {
            lock (_sync)
            {
                entry = _producers.TryGetValue(pid, out var existing) ? existing.Clone() : new ProducerStateEntry(pid);
            }

            pending.Entries[pid] = entry;
        }

        short epoch = header.ProducerEpoch;
        if (!replicated && entry.Epoch >= 0 && epoch < entry.Epoch)
        {
            throw new StorageException(StorageError.InvalidProducerEpoch,
                $"Producer {pid} wrote with epoch {epoch}, older than its current epoch {entry.Epoch}.");
        }

        if (header.IsControl)
        {
            if (bumpingMarker && entry.Epoch >= 0 && epoch <= entry.Epoch)
            {
                throw new StorageException(StorageError.InvalidProducerEpoch,
                    $"Marker of producer {pid} has epoch {epoch}, not above its last seen epoch {entry.Epoch} (transaction version 2).");
            }

            bool aborted = ControlType(batch) == 0;
            if (entry.CurrentTxnFirstOffset >= 0)
            {
                pending.Closed.Add((pid, entry.CurrentTxnFirstOffset, header.BaseOffset, aborted));
            }

            entry.CurrentTxnFirstOffset = -1;
            if (epoch != entry.Epoch)
            {
                entry.Batches.Clear(); // a marker written with a bumped epoch (fencing): the next epoch starts at sequence 0
            }

            entry.Epoch = epoch;
            entry.LastTimestampMs = nowMs;
            return null;
        }

        int first = header.BaseSequence;
        int last = IncrementSequence(first, header.LastOffsetDelta);
        if (replicated)
        {
            // The leader's batch as it is: a new epoch restarts the cached batches; no check can refuse it. Its timestamp is
            // the batch's (the leader's append time on a LogAppendTime topic), which a retry to this replica once leader gets.
            if (epoch != entry.Epoch)
            {
                entry.Batches.Clear();
                entry.Epoch = epoch;
            }

            if (header.IsTransactional && entry.CurrentTxnFirstOffset < 0)
            {
                entry.CurrentTxnFirstOffset = header.BaseOffset;
                pending.Opened.Add((header.BaseOffset, pid));
            }

            entry.AddBatch(new ProducerBatch(first, last, header.BaseOffset, header.LastOffset, header.MaxTimestamp));
            entry.LastTimestampMs = nowMs;
            return null;
        }

        if (coordinator)
        {
            // Kafka's COORDINATOR origin: the coordinator writes without sequences, and its writes are never retried as
            // a client's are, so there is no duplicate to find and no order to check; epoch and transaction still apply.
            if (epoch != entry.Epoch)
            {
                entry.Batches.Clear();
                entry.Epoch = epoch;
            }
        }
        else if (epoch == entry.Epoch && entry.FindDuplicate(first, last) is { } original)
        {
            return original;
        }
        else if (epoch != entry.Epoch)
        {
            if (first != 0 && entry.Epoch >= 0)
            {
                throw new StorageException(StorageError.OutOfOrderSequence,
                    $"Producer {pid} started epoch {epoch} at sequence {first}, not 0.");
            }

            entry.Batches.Clear();
            entry.Epoch = epoch;
        }
        else if (entry.Batches.Count > 0 && !InSequence(entry.LastSequence, first))
        {
            throw new StorageException(StorageError.OutOfOrderSequence,
                $"Producer {pid} sent sequence {first}; the next expected is {IncrementSequence(entry.LastSequence, 1)}.");
        }

        if (header.IsTransactional)
        {
            if (entry.CurrentTxnFirstOffset < 0)
            {
                entry.CurrentTxnFirstOffset = header.BaseOffset;
                pending.Opened.Add((header.BaseOffset, pid));
            }
        }
        else if (entry.CurrentTxnFirstOffset >= 0)
        {
            throw new StorageException(StorageError.InvalidTxnState,
                $"Producer {pid} sent a non-transactional batch while its transaction is open.");
        }

        entry.AddBatch(new ProducerBatch(first, last, header.BaseOffset, header.LastOffset, nowMs));
        entry.LastTimestampMs = nowMs;
        return null;
    }

    /// <summary>Installs the changes of a written append (<paramref name="expire"/>: false while replaying, whose clock is the batches' timestamps).</summary>
    public void Commit(PendingAppend pending, long nowMs, bool expire = true)
    {
        lock (_sync)
        {
            foreach (var (pid, entry) in pending.Entries)
            {
                _producers[pid] = entry;
            }

            foreach (var (first, pid) in pending.Opened)
            {
                _ongoing[first] = pid;
            }

            foreach (var (pid, first, marker, aborted) in pending.Closed)
            {
                _ongoing.Remove(first);
                _unreplicated.Add((first, marker));
                if (aborted)
                {
                    _aborted.Add(new AbortedTxn(pid, first, marker, marker + 1));
                }
            }

            if (expire && nowMs - _lastExpiryCheckMs >= Math.Min(60_000, ExpirationMs))
            {
                ExpireLocked(nowMs);
            }
        }
    }

    /// <summary>Forgets producers idle for longer than <see cref="ExpirationMs"/> with no open transaction.</summary>
    public int Expire(long nowMs)
    {
        lock (_sync)
        {
            return ExpireLocked(nowMs);
        }
    }

    private int ExpireLocked(long nowMs)
    {
        _lastExpiryCheckMs = nowMs;
        var expired = _producers.Values.Where(e => e.CurrentTxnFirstOffset < 0 && nowMs - e.LastTimestampMs > ExpirationMs).Select(e => e.ProducerId).ToList();
        foreach (var pid in expired)
        {
            _producers.Remove(pid);
        }

        return expired.Count;
    }

    /// <summary>The last stable offset for a high watermark: nothing at or above it belongs to an undecided transaction.</summary>
    public long LastStableOffset(long highWatermark)
    {
        lock (_sync)
        {
            long lso = highWatermark;
            foreach (var first in _ongoing.Keys)
            {
                lso = Math.Min(lso, first);
                break;
            }

            _unreplicated.RemoveAll(t => t.MarkerOffset < highWatermark);
            foreach (var (first, _) in _unreplicated)
            {
                lso = Math.Min(lso, first);
            }

            return lso;
        }
    }

    public List<AbortedTxn> AbortedTransactions(long from, long toExclusive)
    {
        lock (_sync)
        {
            return _aborted.Overlapping(from, toExclusive);
        }
    }

    internal Dictionary<long, Cleaning.ProducerLastBatch> LastBatches()
    {
        lock (_sync)
        {
            return _producers.Values.ToDictionary(e => e.ProducerId, e => new Cleaning.ProducerLastBatch(e.LastOffset, e.Epoch));
        }
    }

    /// <summary>Removes the aborted transactions whose markers are at <paramref name="markerOffsets"/> (compaction removed them).</summary>
    public void ForgetAborted(IReadOnlyCollection<long> markerOffsets)
    {
        lock (_sync)
        {
            _aborted.Remove(markerOffsets);
        }
    }

    /// <summary>Drops the aborted transactions whose markers are below the new log start.</summary>
    public void ForgetAbortedBelow(long logStartOffset)
    {
        lock (_sync)
        {
            _aborted.RemoveBelow(logStartOffset);
        }
    }

    /// <summary>
    /// True when the producer has a transaction open in this partition under <paramref name="epoch"/>: its first
    /// transactional batch is written and no marker has closed it (what lets later batches skip KIP-890 verification).
    /// </summary>
    public bool HasOngoingTransaction(long producerId, short epoch)
    {
        lock (_sync)
        {
            return _producers.TryGetValue(producerId, out var entry) && entry.CurrentTxnFirstOffset >= 0 && entry.Epoch == epoch;
        }
    }

    public List<ActiveProducer> ActiveProducers()
    {
        lock (_sync)
        {
            return [.. _producers.Values.OrderBy(e => e.ProducerId).Select(e =>
                new ActiveProducer(e.ProducerId, e.Epoch, e.LastSequence, e.LastTimestampMs, e.CoordinatorEpoch, e.CurrentTxnFirstOffset))];
        }
    }

    /// <summary>Writes a snapshot of the state covering everything below <paramref name="offset"/>; keeps the last two.</summary>
    public void TakeSnapshot(long offset)
    {
        List<ProducerStateEntry> entries;
        lock (_sync)
        {
            entries = [.. _producers.Values.Select(e => e.Clone())];
            _aborted.Sync();
        }

        ProducerStateSnapshot.Write(_fs, _directory, offset, entries);
        var all = ProducerStateSnapshot.List(_fs, _directory);
        for (int i = 0; i < all.Count - 2; i++)
        {
            ProducerStateSnapshot.Delete(_fs, _directory, all[i]);
        }
    }

    /// <summary>
    /// Loads the newest valid snapshot at or below the log end and replays the batches after it (batch headers only,
    /// plus the key of control records). Without a snapshot the last two segments are replayed, as Kafka does after
    /// an upgrade: older producers are then unknown and accepted at any sequence.
    /// </summary>
    internal static ProducerStateManager Load(ISegmentFileSystem fs, string directory, IReadOnlyList<LogSegment> segments, long logEndOffset)
    {
        long scanFrom = segments[Math.Max(0, segments.Count - 2)].BaseOffset;
        List<ProducerStateEntry>? entries = null;
        var snapshots = ProducerStateSnapshot.List(fs, directory);
        for (int i = snapshots.Count - 1; i >= 0; i--)
        {
            if (snapshots[i] > logEndOffset)
            {
                ProducerStateSnapshot.Delete(fs, directory, snapshots[i]);
                continue;
            }

            if (entries is null && snapshots[i] >= segments[0].BaseOffset && ProducerStateSnapshot.Read(fs, directory, snapshots[i]) is { } loaded)
            {
                entries = loaded;
                scanFrom = snapshots[i];
            }
        }

        var manager = new ProducerStateManager(fs, directory, AbortedTxnIndex.Load(fs, directory, scanFrom));
        foreach (var entry in entries ?? [])
        {
            manager._producers[entry.ProducerId] = entry;
            if (entry.CurrentTxnFirstOffset >= 0)
            {
                manager._ongoing[entry.CurrentTxnFirstOffset] = entry.ProducerId;
            }
        }

        manager.Replay(segments, scanFrom);
        manager._unreplicated.Clear(); // the high watermark after recovery is the log end
        return manager;
    }

    private void Replay(IReadOnlyList<LogSegment> segments, long fromOffset)
    {
        foreach (var segment in segments)
        {
            if (segment.NextOffset <= fromOffset || segment.Size == 0)
            {
                continue;
            }

            long start = fromOffset > segment.BaseOffset ? segment.OffsetIndex.FloorPosition(fromOffset - segment.BaseOffset) : 0;
            using var scanner = new BatchScanner(segment.Log, start, segment.Size, 0, verify: false);
            while (scanner.TryNext(out var scanned))
            {
                if (scanned.LastOffset < fromOffset)
                {
                    continue;
                }

                var bytes = scanner.Bytes(scanned);
                var header = new RecordBatchHeader(bytes);
                if (header.ProducerId < 0)
                {
                    continue;
                }

                // What the log holds was accepted when it was written: replayed as a follower takes the leader's batches
                // (Kafka's REPLICATION origin), never checked again. A check would refuse a log that is valid, e.g. one
                // whose producer had no state on the leader that took its next batch, and forget that producer's state.
                var pending = new PendingAppend();
                PrepareBatch(pending, header, bytes, header.MaxTimestamp, replicated: true);
                Commit(pending, header.MaxTimestamp, expire: false);
            }
        }
    }

    /// <summary>The control type of a marker batch: 0 abort, 1 commit (the key of its single record).</summary>
    internal static short ControlType(ReadOnlySpan<byte> batch)
    {
        int p = RecordBatchHeader.HeaderSize;
        SkipVarint(batch, ref p); // record length
        p += 1; // attributes
        SkipVarint(batch, ref p); // timestamp delta
        SkipVarint(batch, ref p); // offset delta
        int zigzag = 0;
        for (int shift = 0; p < batch.Length && shift < 32; shift += 7)
        {
            byte b = batch[p++];
            zigzag |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }
        }

        int keyLength = (int)((uint)zigzag >> 1) ^ -(zigzag & 1);
        return keyLength >= 4 && p + 4 <= batch.Length ? BinaryPrimitives.ReadInt16BigEndian(batch[(p + 2)..]) : (short)-1;
    }

    private static void SkipVarint(ReadOnlySpan<byte> batch, ref int p)
    {
        while (p < batch.Length && (batch[p++] & 0x80) != 0)
        {
        }
    }

    private static bool InSequence(int last, int next) => next == last + 1L || (next == 0 && last == int.MaxValue);

    private static int IncrementSequence(int sequence, int increment) =>
        sequence > int.MaxValue - increment ? increment - (int.MaxValue - sequence) - 1 : sequence + increment;

    public void Dispose()
    {
        lock (_sync)
        {
            _aborted.Dispose();
        }
    }
}
