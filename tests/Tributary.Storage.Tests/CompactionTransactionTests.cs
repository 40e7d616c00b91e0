using System.Text;
using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

/// <summary>
/// Compaction of logs with transactions, as Kafka does it: aborted records go, the cleaner stops below the last
/// stable offset, markers outlive their transaction's data and then go after delete.retention.ms, the batch holding
/// an active producer's last sequence survives (emptied), and the aborted-transaction index stays consistent, so a
/// read_committed reader sees exactly the committed data.
/// </summary>
public sealed class CompactionTransactionTests : IDisposable
{
    private const long Retention = 1000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    private static LogConfig Compacted(int segmentBytes = 700) => new()
    {
        SegmentBytes = segmentBytes,
        FlushPolicy = FlushPolicy.PageCache,
        CleanupCompact = true,
        CleanupDelete = false,
        IndexIntervalBytes = 128,
        DeleteRetentionMs = Retention,
        MinCleanableDirtyRatio = 0.5,
    };

    /// <summary>What was written, per offset, and how each transaction ended.</summary>
    private sealed class Model
    {
        public Dictionary<long, (string Key, string? Value)> Committed { get; } = [];
        public HashSet<long> Aborted { get; } = [];
        public Dictionary<long, List<(long Offset, string Key, string? Value)>> Open { get; } = [];
        public Dictionary<long, int> Sequences { get; } = [];

        /// <summary>Key → offset of its last committed write.</summary>
        public Dictionary<string, long> Latest()
        {
            var latest = new Dictionary<string, long>();
            foreach (var (offset, (key, _)) in Committed)
            {
                if (!latest.TryGetValue(key, out long o) || o < offset)
                {
                    latest[key] = offset;
                }
            }

            return latest;
        }

        public async Task WriteAsync(PartitionLog log, long pid, bool transactional, IReadOnlyList<(string Key, string? Value)> records, long now)
        {
            int sequence = Sequences.GetValueOrDefault(pid);
            var builder = new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = 0, BaseSequence = sequence, IsTransactional = transactional };
            foreach (var (key, value) in records)
            {
                builder.Add(now, Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value));
            }

            var result = await log.AppendAsync(builder.Build());
            Sequences[pid] = sequence + records.Count;
            for (int i = 0; i < records.Count; i++)
            {
                if (transactional)
                {
                    (Open.TryGetValue(pid, out var open) ? open : Open[pid] = []).Add((result.BaseOffset + i, records[i].Key, records[i].Value));
                }
                else
                {
                    Committed[result.BaseOffset + i] = records[i];
                }
            }
        }

        public async Task EndAsync(PartitionLog log, long pid, bool commit, long now)
        {
            await log.AppendAsync(Marker(pid, commit, now));
            if (Open.Remove(pid, out var records))
            {
                foreach (var (offset, key, value) in records)
                {
                    if (commit)
                    {
                        Committed[offset] = (key, value);
                    }
                    else
                    {
                        Aborted.Add(offset);
                    }
                }
            }
        }
    }

    private static byte[] Marker(long pid, bool commit, long now) =>
        new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = 0, IsTransactional = true, IsControl = true }
            .Add(now, [0, 0, 0, commit ? (byte)1 : (byte)0], [0, 0, 0, 0, 0, 0]).Build();

    private readonly record struct Batch(long BaseOffset, long LastOffset, long ProducerId, int BaseSequence, bool IsControl, bool IsTransactional, List<DecodedRecord> Records);

    /// <summary>Every batch from the log start to <paramref name="limit"/>, advancing by each batch's last offset.</summary>
    private static List<Batch> Batches(PartitionLog log, long limit)
    {
        var batches = new List<Batch>();
        long offset = log.LogStartOffset;
        while (offset < limit)
        {
            using var slice = log.Read(offset, 256 * 1024);
            Assert.False(slice.IsEmpty);
            var bytes = slice.Memory.ToArray();
            for (int position = 0; bytes.Length - position >= RecordBatchHeader.HeaderSize;)
            {
                var header = new RecordBatchHeader(bytes.AsSpan(position));
                int size = header.TotalSize;
                if (size > bytes.Length - position || header.BaseOffset >= limit)
                {
                    break;
                }

                Assert.Equal(header.Crc, RecordBatchHeader.ComputeCrc(bytes.AsSpan(position, size)));
                if (header.LastOffset >= offset)
                {
                    batches.Add(new Batch(header.BaseOffset, header.LastOffset, header.ProducerId, header.BaseSequence, header.IsControl, header.IsTransactional,
                        RecordReader.ReadAll(bytes.AsMemory(position, size))));
                }

                offset = Math.Max(offset, header.LastOffset + 1);
                position += size;
            }
        }

        return batches;
    }

    private static bool IsAbortMarker(Batch batch) => batch.IsControl && batch.Records.Count > 0 && batch.Records[0].Key!.Value.Span[3] == 0;

    /// <summary>What a read_committed consumer sees up to the LSO, applying the aborted transactions the log returns as the Java client does.</summary>
    private static List<DecodedRecord> ReadCommitted(PartitionLog log)
    {
        long lso = log.LastStableOffset;
        var aborted = new Queue<AbortedTxn>(log.AbortedTransactions(log.LogStartOffset, lso).OrderBy(t => t.FirstOffset));
        var abortedProducers = new HashSet<long>();
        var visible = new List<DecodedRecord>();
        foreach (var batch in Batches(log, lso))
        {
            while (aborted.TryPeek(out var next) && next.FirstOffset <= batch.LastOffset)
            {
                abortedProducers.Add(aborted.Dequeue().ProducerId);
            }

            if (batch.IsControl)
            {
                if (IsAbortMarker(batch))
                {
                    abortedProducers.Remove(batch.ProducerId);
                }
            }
            else if (!(batch.IsTransactional && abortedProducers.Contains(batch.ProducerId)))
            {
                visible.AddRange(batch.Records);
            }
        }

        return visible;
    }

    private static string Key(DecodedRecord r) => Encoding.UTF8.GetString(r.Key!.Value.Span);
    private static string? Value(DecodedRecord r) => r.Value is { } v ? Encoding.UTF8.GetString(v.Span) : null;

    /// <summary>
    /// read_committed sees only committed records, each exactly as written, and for every key its last committed
    /// value below the LSO (a tombstone may be gone); read_uncommitted never sees an aborted record in a cleaned segment.
    /// </summary>
    private static void AssertConsistent(PartitionLog log, Model model, long cleanedBelow)
    {
        var seen = new Dictionary<string, long>();
        foreach (var record in ReadCommitted(log))
        {
            Assert.True(model.Committed.TryGetValue(record.Offset, out var written), $"read_committed sees offset {record.Offset}, not committed");
            Assert.Equal(written.Key, Key(record));
            Assert.Equal(written.Value, Value(record));
            seen[written.Key] = record.Offset;
        }

        long lso = log.LastStableOffset;
        var latestBelowLso = new Dictionary<string, long>();
        foreach (var (offset, (key, _)) in model.Committed.Where(kv => kv.Key < lso))
        {
            if (!latestBelowLso.TryGetValue(key, out long o) || o < offset)
            {
                latestBelowLso[key] = offset;
            }
        }

        foreach (var (key, offset) in latestBelowLso)
        {
            if (model.Committed[offset].Value is not null)
            {
                Assert.True(seen.TryGetValue(key, out long s) && s == offset, $"key {key}: last committed value at {offset} not seen (saw {(seen.TryGetValue(key, out long x) ? x : -1)})");
            }
        }

        foreach (var batch in Batches(log, log.HighWatermark).Where(b => b.BaseOffset < cleanedBelow))
        {
            Assert.DoesNotContain(batch.Records, r => model.Aborted.Contains(r.Offset));
        }

        // Every abort marker still holding its record has its index entry, and every entry its marker.
        var markers = Batches(log, log.HighWatermark).Where(IsAbortMarker).Select(b => b.BaseOffset).ToHashSet();
        var entries = log.AbortedTransactions(log.LogStartOffset, long.MaxValue).Select(t => t.LastOffset).ToHashSet();
        Assert.Equal(markers.Order(), entries.Order());
    }

    private async Task SealAsync(PartitionLog log, Model model)
    {
        log.Roll();
        await model.WriteAsync(log, -1, false, [("sentinel", Guid.NewGuid().ToString("N"))], _time.NowMs);
    }

    [Fact]
    public async Task Aborted_records_go_and_their_marker_follows_after_the_delete_horizon()
    {
        var model = new Model();
        using var log = PartitionLog.Open(_dir.Path, Compacted(), _time);
        var cleaner = Cleaners.For(log, _time);
        await model.WriteAsync(log, -1, false, [("a", "a0"), ("b", "b0")], _time.NowMs);
        await model.WriteAsync(log, 7, true, [("a", "aborted-a"), ("c", "aborted-c")], _time.NowMs);
        await model.EndAsync(log, 7, commit: false, _time.NowMs);
        await model.WriteAsync(log, 8, true, [("b", "b1")], _time.NowMs);
        await model.EndAsync(log, 8, commit: true, _time.NowMs);
        // Producer 7 writes again, so its aborted batch no longer holds its last sequence (that batch would stay, emptied, with its marker).
        await model.WriteAsync(log, 7, true, [("e", "e0")], _time.NowMs);
        await model.EndAsync(log, 7, commit: true, _time.NowMs);
        await model.WriteAsync(log, -1, false, [("d", "d0")], _time.NowMs);
        await SealAsync(log, model);
        long abortMarker = 4, commitMarker = 6;
        Assert.Equal([abortMarker], log.AbortedTransactions(0, long.MaxValue).Select(t => t.LastOffset));

        // Pass 1: the aborted records and the superseded b0 go; both markers stay (their data was there this pass).
        Assert.True(cleaner.Clean(log).Cleaned);
        var batches = Batches(log, log.HighWatermark);
        Assert.DoesNotContain(batches.SelectMany(b => b.Records), r => model.Aborted.Contains(r.Offset));
        Assert.Contains(batches, b => b.IsControl && b.BaseOffset == abortMarker && b.Records.Count == 1);
        Assert.Contains(batches, b => b.IsControl && b.BaseOffset == commitMarker && b.Records.Count == 1);
        AssertConsistent(log, model, cleanedBelow: log.HighWatermark);

        // Pass 2: the abort marker has no data left: it gets a delete horizon but stays until it passes; the commit
        // marker's data (b1) is still there, so it stays as it is.
        cleaner.Clean(log);
        _time.Advance(Retention - 1);
        cleaner.Clean(log);
        Assert.Contains(Batches(log, log.HighWatermark), b => b.BaseOffset == abortMarker && b.Records.Count == 1);
        AssertConsistent(log, model, cleanedBelow: log.HighWatermark);

        _time.Advance(2);
        cleaner.Clean(log);
        batches = Batches(log, log.HighWatermark);
        Assert.DoesNotContain(batches, b => b.BaseOffset == abortMarker && b.Records.Count > 0);
        Assert.Contains(batches, b => b.BaseOffset == commitMarker && b.Records.Count == 1);
        Assert.Empty(log.AbortedTransactions(0, long.MaxValue));
        AssertConsistent(log, model, cleanedBelow: log.HighWatermark);
        Assert.Equal(["a0", "b1", "e0", "d0"], ReadCommitted(log).Where(r => Key(r) != "sentinel").Select(Value));

        // A commit marker goes the same way once its transaction's data is superseded (and its producer wrote again).
        await model.WriteAsync(log, -1, false, [("b", "b2")], _time.NowMs);
        await model.WriteAsync(log, 8, true, [("f", "f0")], _time.NowMs);
        await model.EndAsync(log, 8, commit: true, _time.NowMs);
        await SealAsync(log, model);
        cleaner.Clean(log);
        cleaner.Clean(log);
        _time.Advance(Retention + 1);
        cleaner.Clean(log);
        Assert.DoesNotContain(Batches(log, log.HighWatermark), b => b.BaseOffset == commitMarker && b.Records.Count > 0);
        AssertConsistent(log, model, cleanedBelow: log.HighWatermark);

        // Restart: the index, rebuilt or loaded, still matches the markers.
        log.Dispose();
        using var reopened = PartitionLog.Open(_dir.Path, Compacted(), _time);
        AssertConsistent(reopened, model, cleanedBelow: reopened.HighWatermark);
    }

    [Fact]
    public async Task The_cleaner_stops_below_the_last_stable_offset()
    {
        var model = new Model();
        using var log = PartitionLog.Open(_dir.Path, Compacted(segmentBytes: 300), _time);
        var cleaner = Cleaners.For(log, _time);
        for (int i = 0; i < 5; i++)
        {
            await model.WriteAsync(log, -1, false, [("k", $"early{i}")], _time.NowMs);
        }

        log.Roll();
        await model.WriteAsync(log, 9, true, [("open", "undecided")], _time.NowMs);
        long openAt = model.Open[9][0].Offset;
        for (int i = 0; i < 20; i++)
        {
            await model.WriteAsync(log, -1, false, [("k", $"late{i}")], _time.NowMs);
        }

        await SealAsync(log, model);
        Assert.Equal(openAt, log.LastStableOffset);
        var result = cleaner.Clean(log);

        // Below the open transaction's segment all but the last "early" value go; everything from it on is untouched.
        Assert.True(result.EndOffset <= openAt, $"cleaned to {result.EndOffset}, LSO {openAt}");
        var offsets = Batches(log, log.HighWatermark).SelectMany(b => b.Records).Select(r => r.Offset).ToList();
        Assert.Equal([4L, .. Enumerable.Range((int)openAt, (int)(log.HighWatermark - openAt)).Select(o => (long)o)], offsets);

        // Once it commits, the rest is cleanable and its record stays (the latest of its key).
        await model.EndAsync(log, 9, commit: true, _time.NowMs);
        await SealAsync(log, model);
        for (int i = 0; i < 5 && log.GetCleanerStatus().DirtyRatio > 0; i++)
        {
            cleaner.Clean(log);
        }

        Assert.Contains(ReadCommitted(log), r => r.Offset == openAt);
        Assert.Equal(["late19"], ReadCommitted(log).Where(r => Key(r) == "k").Select(Value));
        AssertConsistent(log, model, cleanedBelow: log.HighWatermark);
    }

    [Fact]
    public async Task The_batch_with_a_producers_last_sequence_survives_empty_so_its_state_survives_a_restart()
    {
        var model = new Model();
        const long Pid = 42;
        using (var log = PartitionLog.Open(_dir.Path, Compacted(segmentBytes: 100_000), _time))
        {
            for (int i = 0; i < 4; i++)
            {
                await model.WriteAsync(log, Pid, false, [("p", $"v{i}"), ("q", $"v{i}")], _time.NowMs);
            }

            // Another producer overwrites both keys: every record of producer 42 is obsolete.
            await model.WriteAsync(log, -1, false, [("p", "final"), ("q", "final")], _time.NowMs);
            await SealAsync(log, model);
            Assert.True(Cleaners.For(log, _time).Clean(log).Cleaned);

            var ofProducer = Batches(log, log.HighWatermark).Where(b => b.ProducerId == Pid).ToList();
            var last = Assert.Single(ofProducer);
            Assert.Empty(last.Records);
            Assert.Equal((6, 7, 6), (last.BaseOffset, last.LastOffset, last.BaseSequence));
        }

        // Without snapshots the state comes from replaying the log: the empty batch still carries sequence 7.
        foreach (string snapshot in Directory.EnumerateFiles(_dir.Path, "*.snapshot"))
        {
            File.Delete(snapshot);
        }

        using var reopened = PartitionLog.Open(_dir.Path, Compacted(segmentBytes: 100_000), _time);
        var producer = Assert.Single(reopened.ActiveProducers(), p => p.ProducerId == Pid);
        Assert.Equal(7, producer.LastSequence);
        var outOfOrder = new RecordBatchBuilder { ProducerId = Pid, ProducerEpoch = 0, BaseSequence = 12 }.Add(_time.NowMs, [1], [1]).Build();
        var error = await Assert.ThrowsAsync<StorageException>(async () => await reopened.AppendAsync(outOfOrder));
        Assert.Equal(StorageError.OutOfOrderSequence, error.Error);
        await reopened.AppendAsync(new RecordBatchBuilder { ProducerId = Pid, ProducerEpoch = 0, BaseSequence = 8 }.Add(_time.NowMs, [1], [1]).Build());
    }

    [Fact]
    public async Task Property_random_transactional_workloads_read_committed_sees_exactly_the_committed_data()
    {
        // Steps: (kind, producer, key). kind 0 clean, 1 non-transactional write, 2 idempotent write, 3-5 transactional
        // write, 6 commit, 7 abort, 8 advance time past the delete horizon, 9 tombstone.
        var steps = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 2], Gen.Int[0, 7]).Array[20, 150];
        await Task.Run(() => Gen.Select(steps, Gen.Int[300, 1500]).Sample(sample =>
        {
            var (ops, segmentBytes) = sample;
            using var dir = new TempDir();
            var time = FakeTime.Create();
            var model = new Model();
            var config = Compacted(segmentBytes);
            var log = PartitionLog.Open(dir.Path, config, time);
            try
            {
                var cleaner = Cleaners.For(log, time, dedupeBytes: 24 * 40);
                void Run(Task task) => task.GetAwaiter().GetResult();
                void Clean()
                {
                    log.Roll();
                    Run(model.WriteAsync(log, -1, false, [("sentinel", Guid.NewGuid().ToString("N"))], time.NowMs));
                    var result = cleaner.Clean(log);
                    AssertConsistent(log, model, cleanedBelow: result.Cleaned ? result.EndOffset : 0);
                }

                foreach (var (kind, producer, key) in ops)
                {
                    long pid = 100 + producer;
                    string k = $"k{key}";
                    switch (kind)
                    {
                        case 0: Clean(); break;
                        case 1: Run(model.WriteAsync(log, -1, false, [(k, $"v{Random.Shared.Next()}")], time.NowMs)); break;
                        case 2: Run(model.WriteAsync(log, 200, false, [(k, $"i{Random.Shared.Next()}"), ($"k{(key + 1) % 8}", "i")], time.NowMs)); break;
                        case 3 or 4 or 5: Run(model.WriteAsync(log, pid, true, [(k, $"t{Random.Shared.Next()}")], time.NowMs)); break;
                        case 6 or 7 when model.Open.ContainsKey(pid): Run(model.EndAsync(log, pid, commit: kind == 6, time.NowMs)); break;
                        case 8: time.Advance(Retention + 1); break;
                        case 9: Run(model.WriteAsync(log, -1, false, [(k, null)], time.NowMs)); break;
                        default: break;
                    }

                    time.Advance(5);
                }

                foreach (long pid in model.Open.Keys.ToList())
                {
                    Run(model.EndAsync(log, pid, commit: pid % 2 == 0, time.NowMs));
                }

                // Clean to the end, twice past the horizon: no aborted record and no removable marker remain.
                for (int i = 0; i < 20 && log.GetCleanerStatus().DirtyRatio > 0; i++)
                {
                    Clean();
                }

                for (int i = 0; i < 3; i++)
                {
                    Clean();
                    time.Advance(Retention + 1);
                }

                Clean();
                var batches = Batches(log, log.HighWatermark);
                Assert.DoesNotContain(batches.SelectMany(b => b.Records), r => model.Aborted.Contains(r.Offset));
                var liveLatest = model.Latest().Where(kv => model.Committed[kv.Value].Value is not null && kv.Key != "sentinel").Select(kv => kv.Value).Order();
                Assert.Equal(liveLatest, batches.Where(b => !b.IsControl).SelectMany(b => b.Records).Where(r => Key(r) != "sentinel").Select(r => r.Offset));
                // A marker that still holds its record has data of its transaction before it (possibly an emptied batch kept for the producer's sequence).
                Assert.All(batches.Where(b => b.IsControl && b.Records.Count > 0), marker => Assert.True(batches.Any(d =>
                    d.ProducerId == marker.ProducerId && !d.IsControl && d.BaseOffset < marker.BaseOffset && d.BaseOffset > LastMarkerBefore(batches, marker)),
                    $"marker {marker.BaseOffset} of {marker.ProducerId}: " + string.Join(" ", batches.Where(b => b.ProducerId == marker.ProducerId).Select(b => $"{b.BaseOffset}{(b.IsControl ? "c" : "d")}{b.Records.Count}"))
                    + " aborted " + string.Join(",", model.Aborted.Order()) + " hw " + log.HighWatermark + " lso " + log.LastStableOffset));
                log.Dispose();
                log = PartitionLog.Open(dir.Path, config, time);
                AssertConsistent(log, model, cleanedBelow: log.HighWatermark);
            }
            finally
            {
                log.Dispose();
            }
        }, iter: 40));
    }

    /// <summary>Base offset of the producer's marker before <paramref name="marker"/>, or -1.</summary>
    private static long LastMarkerBefore(List<Batch> batches, Batch marker) =>
        batches.Where(b => b.IsControl && b.ProducerId == marker.ProducerId && b.BaseOffset < marker.BaseOffset).Select(b => b.BaseOffset).DefaultIfEmpty(-1).Max();
}
