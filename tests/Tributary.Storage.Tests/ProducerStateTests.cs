using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

/// <summary>Idempotence and transaction state of the partition log: duplicates, gaps, epochs, LSO, aborted index, snapshots.</summary>
public sealed class ProducerStateTests
{
    private static byte[] Batch(long pid, short epoch, int seq, int count = 1, bool transactional = false)
    {
        var b = new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, BaseSequence = seq, IsTransactional = transactional };
        for (int i = 0; i < count; i++) b.Add(1_700_000_000_000 + i, [(byte)i]);
        return b.Build();
    }

    private static byte[] Marker(long pid, short epoch, bool commit) =>
        new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, IsTransactional = true, IsControl = true }
            .Add(1_700_000_000_000, [0, 0, 0, commit ? (byte)1 : (byte)0], [0, 0, 0, 0, 0, 0]).Build();

    private static async Task<StorageError> FailsWith(PartitionLog log, byte[] batch) =>
        (await Assert.ThrowsAsync<StorageException>(async () => await log.AppendAsync(batch))).Error;

    [Fact]
    public async Task DuplicateBatchGetsOriginalOffsetsAndIsNotWritten()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batch(-1, -1, -1, 3));
        var first = await log.AppendAsync(Batch(7, 0, 0, 2));
        var second = await log.AppendAsync(Batch(7, 0, 2, 2));
        Assert.Equal((3, 4), (first.BaseOffset, first.LastOffset));
        var retry = await log.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal((3, 4), (retry.BaseOffset, retry.LastOffset));
        Assert.Equal(7, log.LogEndOffset);
        Assert.Equal(second.BaseOffset, (await log.AppendAsync(Batch(7, 0, 2, 2))).BaseOffset);
    }

    /// <summary>
    /// A coordinator's transactional batches (Kafka's COORDINATOR origin, the group coordinator's TxnOffsetCommit) have
    /// no sequence: each is written, none is taken for a retry of another, while an older epoch is still refused and the
    /// transaction opens and closes as a client's would. A client's batch without a sequence is still checked as before.
    /// </summary>
    [Fact]
    public async Task CoordinatorBatchesSkipSequenceChecksButNotEpochsOrTransactions()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        var first = await log.AppendAsync(Batch(7, 1, -1, 1, transactional: true), AppendOrigin.Coordinator);
        var second = await log.AppendAsync(Batch(7, 1, -1, 1, transactional: true), AppendOrigin.Coordinator);
        Assert.Equal((0L, 1L), (first.BaseOffset, second.BaseOffset)); // both written: no duplicate without a sequence
        Assert.Equal(0, log.LastStableOffset); // the transaction is open from its first batch
        Assert.Equal(StorageError.InvalidProducerEpoch,
            (await Assert.ThrowsAsync<StorageException>(async () => await log.AppendAsync(Batch(7, 0, -1, 1, transactional: true), AppendOrigin.Coordinator))).Error);
        await log.AppendAsync(Marker(7, 1, commit: true));
        Assert.Equal(3, log.LastStableOffset);
        Assert.Equal(3, (await log.AppendAsync(Batch(7, 1, -1, 1, transactional: true), AppendOrigin.Coordinator)).BaseOffset); // the next transaction

        // A client's sequenced batches after them: a new epoch must start at sequence 0, as ever.
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(log, Batch(7, 2, 5, 1, transactional: true)));
    }

    /// <summary>
    /// Transaction version 2 (KIP-890 part 2): a transaction's marker carries the epoch its end bumped to, and the
    /// producer's next transaction writes under that epoch. A duplicated or late copy of the marker carries an epoch the
    /// partition has seen, so it is refused instead of closing the next transaction, whose records stay unstable until
    /// their own marker; a late write of the ended transaction (the old epoch) is fenced.
    /// </summary>
    [Fact]
    public async Task EpochBumpingMarkersMustExceedEveryEpochSeenSoDuplicatesCannotCloseTheNextTransaction()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batch(7, 3, 0, 1, transactional: true));                                 // 0
        await log.AppendAsync(Marker(7, 4, commit: true), AppendOrigin.EpochBumpingMarker);            // 1
        Assert.Equal(2, log.LastStableOffset);

        Assert.Equal(StorageError.InvalidProducerEpoch, await FailsWith(log, Batch(7, 3, 1, 1, transactional: true)));
        await log.AppendAsync(Batch(7, 4, 0, 1, transactional: true));                                 // 2: the next transaction
        Assert.Equal(StorageError.InvalidProducerEpoch,
            (await Assert.ThrowsAsync<StorageException>(async () => await log.AppendAsync(Marker(7, 4, commit: true), AppendOrigin.EpochBumpingMarker))).Error);
        Assert.Equal(2, log.LastStableOffset); // still open
        await log.AppendAsync(Marker(7, 5, commit: false), AppendOrigin.EpochBumpingMarker);           // 3: its own end
        Assert.Equal(4, log.LastStableOffset);
    }

    /// <summary>
    /// What a transactional coordinator replays: each record with the producer of its batch when the batch is
    /// transactional, and the markers in their places (commit or abort); <see cref="PartitionLogReplay.ReplayRecords"/>
    /// still yields the data records alone.
    /// </summary>
    [Fact]
    public async Task ReplayWithMarkersReportsTransactionalProducersAndMarkersInLogOrder()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batch(-1, -1, -1, 1));                                                   // 0
        await log.AppendAsync(Batch(7, 2, -1, 2, transactional: true), AppendOrigin.Coordinator);     // 1-2
        await log.AppendAsync(Marker(7, 2, commit: true));                                            // 3
        await log.AppendAsync(Batch(8, 0, -1, 1, transactional: true), AppendOrigin.Coordinator);     // 4
        await log.AppendAsync(Marker(8, 0, commit: false));                                           // 5
        await log.AppendAsync(Batch(9, 0, -1, 1, transactional: true), AppendOrigin.Coordinator);     // 6, still open

        var replayed = log.ReplayWithMarkers().Select(r => (r.Record.Offset, r.ProducerId, r.ProducerEpoch, r.Marker)).ToList();
        Assert.Equal([(0L, -1L, (short)-1, (bool?)null), (1, 7, 2, null), (2, 7, 2, null), (3, 7, 2, true), (4, 8, 0, null), (5, 8, 0, false), (6, 9, 0, null)], replayed);
        Assert.Equal([0L, 1, 2, 4, 6], log.ReplayRecords().Select(r => r.Offset));
    }

    [Fact]
    public async Task ARetriedBatchOnALogAppendTimeTopicIsAnsweredWithItsOriginalAppendTime()
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        using var log = PartitionLog.Open(dir.Path, new LogConfig { TimestampType = TimestampType.LogAppendTime }, time);
        var first = await log.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal(time.NowMs, first.LogAppendTime);
        time.Advance(5_000);
        var retry = await log.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal(first, retry);

        using var createTime = new TempDir();
        using var plain = PartitionLog.Open(createTime.Path, new LogConfig(), time);
        await plain.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal(-1, (await plain.AppendAsync(Batch(7, 0, 0, 2))).LogAppendTime);
    }

    [Fact]
    public async Task AReadCommittedReadKeepsTheAbortsOfWhatItReturnsWhenDeleteRecordsRunsDuringIt()
    {
        using var dir = new TempDir();
        var fs = new FaultyFileSystem();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create(), fs, LogFlusher.Shared);
        await log.AppendAsync(Batch(7, 0, 0, 2, transactional: true)); // 0-1, aborted
        await log.AppendAsync(Marker(7, 0, commit: false));            // 2
        await log.AppendAsync(Batch(-1, -1, -1, 2));                     // 3-4
        log.Roll();
        await log.AppendAsync(Batch(-1, -1, -1, 2));                     // 5-6

        // A lagging consumer's read is held inside the old segment while DeleteRecords moves the log start past it.
        fs.HoldNextLogRead = true;
        var read = Task.Run(() =>
        {
            using var slice = log.ReadCommitted(0, 1 << 20, log.LastStableOffset, out var aborted);
            return (slice.FirstOffset, slice.NextOffset, aborted);
        });
        Assert.True(fs.ReadEntered.Wait(TimeSpan.FromSeconds(10)));
        log.DeleteRecordsBefore(5);
        fs.ReadGate.Set();
        var (first, next, aborted) = await read;
        Assert.Equal((0L, 5L), (first, next));
        Assert.Equal(7, Assert.Single(aborted).ProducerId);
    }

    [Fact]
    public async Task AReadCommittedReadReportsOnlyTheAbortsThatBeginWithinWhatItReturns()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        for (short epoch = 0; epoch < 3; epoch++)
        {
            await log.AppendAsync(Batch(7, epoch, 0, 2, transactional: true));
            await log.AppendAsync(Marker(7, epoch, commit: false));
        }
        // Each transaction is 2 records and a marker: 0-2, 3-5, 6-8. A read of one batch returns 0-1 only.
        using (var slice = log.ReadCommitted(0, 1, log.LastStableOffset, out var aborted))
        {
            Assert.Equal(2, slice.NextOffset);
            Assert.Equal(0, Assert.Single(aborted).FirstOffset);
        }
        using (var slice = log.ReadCommitted(4, 1 << 20, log.LastStableOffset, out var aborted))
        {
            Assert.Equal([3L, 6L], aborted.Select(a => a.FirstOffset));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnAbortMarkerIsAppendedWhenItsIndexEntryCannotBeWrittenAndTheAbortOutlivesARestart(bool diskFreedBeforeClose)
    {
        using var dir = new TempDir();
        var fs = new FaultyFileSystem();
        var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create(), fs, LogFlusher.Shared);
        try
        {
            await log.AppendAsync(Batch(7, 0, 0, 2, transactional: true)); // 0-1
            fs.DiskFullFor = ".txnindex";
            var marker = await log.AppendAsync(Marker(7, 0, commit: false));
            Assert.Equal(2, marker.BaseOffset);
            Assert.Equal(3, (await log.AppendAsync(Batch(-1, -1, -1, 1))).BaseOffset); // no offset reused
            Assert.Equal(0, Assert.Single(log.AbortedTransactions(0, 4)).FirstOffset);
            if (diskFreedBeforeClose) fs.DiskFullFor = null;
        }
        finally
        {
            log.Dispose(); // snapshots the producer state: only with the index entry durable
        }

        fs.DiskFullFor = null;
        using var reopened = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create(), fs, LogFlusher.Shared);
        Assert.Equal(4, reopened.LogEndOffset);
        Assert.Equal(0, Assert.Single(reopened.AbortedTransactions(0, 4)).FirstOffset);
    }

    [Fact]
    public async Task GapsAndStaleEpochsAreRejected()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batch(7, 1, 0));
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(log, Batch(7, 1, 2)));
        Assert.Equal(StorageError.InvalidProducerEpoch, await FailsWith(log, Batch(7, 0, 1)));
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(log, Batch(7, 2, 5)));
        await log.AppendAsync(Batch(7, 2, 0)); // KIP-360 bump: a new epoch starts at 0
        await log.AppendAsync(Batch(9, 0, 42)); // unknown producer: any sequence
        Assert.Equal(3, log.LogEndOffset);
        var producer = Assert.Single(log.ActiveProducers(), p => p.ProducerId == 7);
        Assert.Equal((short)2, producer.Epoch);
        Assert.Equal(0, producer.LastSequence);
    }

    [Fact]
    public async Task OnlyTheLastFiveBatchesAreRemembered()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        for (int i = 0; i < 6; i++) await log.AppendAsync(Batch(7, 0, i));
        Assert.Equal(1, (await log.AppendAsync(Batch(7, 0, 1))).BaseOffset);
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(log, Batch(7, 0, 0)));
    }

    [Fact]
    public async Task LastStableOffsetHoldsAtOpenTransactionsAndAbortsAreIndexed()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batch(-1, -1, -1, 2));                 // 0-1
        await log.AppendAsync(Batch(7, 0, 0, 2, transactional: true)); // 2-3 open
        await log.AppendAsync(Batch(-1, -1, -1, 1));                 // 4
        await log.AppendAsync(Batch(8, 0, 0, 1, transactional: true)); // 5 open
        Assert.Equal(2, log.LastStableOffset);
        Assert.Equal(6, log.HighWatermark);
        await log.AppendAsync(Marker(7, 0, commit: false));           // 6 abort of 2-3
        Assert.Equal(5, log.LastStableOffset);
        var aborted = Assert.Single(log.AbortedTransactions(0, 100));
        Assert.Equal((7L, 2L, 6L), (aborted.ProducerId, aborted.FirstOffset, aborted.LastOffset));
        Assert.Empty(log.AbortedTransactions(7, 100));
        await log.AppendAsync(Marker(8, 0, commit: true));            // 7 commit of 5
        Assert.Equal(8, log.LastStableOffset);
        Assert.Single(log.AbortedTransactions(0, 100));
        using var slice = log.Read(0, 1 << 20, log.LastStableOffset);
        Assert.Equal(0, slice.FirstOffset);
    }

    [Fact]
    public async Task AbortedTransactionsTheLogStartHasPassedAreForgottenInMemoryAndOnDisk()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 300, FlushPolicy = FlushPolicy.PageCache };
        var time = FakeTime.Create();
        var markers = new List<long>();
        using (var log = PartitionLog.Open(dir.Path, config, time))
        {
            // Ten aborted transactions of one producer, spread over several segments.
            for (short epoch = 0; epoch < 10; epoch++)
            {
                await log.AppendAsync(Batch(7, epoch, 0, 2, transactional: true));
                markers.Add((await log.AppendAsync(Marker(7, epoch, commit: false))).BaseOffset);
            }

            await log.AppendAsync(Batch(-1, -1, -1, 1));
            Assert.Equal(10, log.AbortedTransactions(0, long.MaxValue).Count);

            log.DeleteRecordsBefore(markers[3] + 1);
            Assert.Equal(markers[4..], log.AbortedTransactions(0, long.MaxValue).Select(a => a.LastOffset));

            // Size retention takes whole segments: the log start moves to a segment boundary, and the entries below
            // it go with them.
            log.Config = config with { RetentionBytes = 400 };
            Assert.True(log.EnforceRetention() > 0);
            Assert.Equal(markers.Where(m => m >= log.LogStartOffset), log.AbortedTransactions(0, long.MaxValue).Select(a => a.LastOffset));
            Assert.True(log.LogStartOffset > markers[4], $"log start {log.LogStartOffset}");
        }

        // The file was rewritten too: a reopened log (its snapshot covers everything) reads the pruned entries.
        long fileBytes = new FileInfo(Path.Combine(dir.Path, "aborted-transactions.txnindex")).Length;
        using var reopened = PartitionLog.Open(dir.Path, config, time);
        var left = reopened.AbortedTransactions(0, long.MaxValue);
        Assert.Equal(markers.Where(m => m >= reopened.LogStartOffset), left.Select(a => a.LastOffset));
        Assert.Equal(left.Count * 32, fileBytes);
    }

    [Fact]
    public async Task StateSurvivesReopenWithSnapshotsAndTailReplay()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 300 };
        var time = FakeTime.Create();
        using (var log = PartitionLog.Open(dir.Path, config, time))
        {
            for (int i = 0; i < 10; i++) await log.AppendAsync(Batch(7, 0, i));
            await log.AppendAsync(Batch(8, 0, 0, 1, transactional: true));
            await log.AppendAsync(Batch(9, 0, 0, 1, transactional: true));
            await log.AppendAsync(Marker(9, 0, commit: false));
            Assert.True(log.SegmentCount > 2);
        }

        Assert.NotEmpty(Directory.GetFiles(dir.Path, "*.snapshot"));
        // Without the clean-shutdown snapshot, the state comes from an older snapshot plus the tail.
        var newest = Directory.GetFiles(dir.Path, "*.snapshot").Max()!;
        File.Delete(newest);
        using var reopened = PartitionLog.Open(dir.Path, config, time);
        Assert.Equal(9, (await reopened.AppendAsync(Batch(7, 0, 9))).BaseOffset);
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(reopened, Batch(7, 0, 11)));
        Assert.Equal(10, reopened.LastStableOffset);
        var aborted = Assert.Single(reopened.AbortedTransactions(0, 100));
        Assert.Equal(9, aborted.ProducerId);
    }

    [Fact]
    public async Task ATornShutdownSnapshotIsIgnoredAndTheStateComesFromAnOlderOneAndTheTail()
    {
        using var dir = new TempDir();
        var fs = new FaultyFileSystem();
        using var flusher = new LogFlusher("test-flusher");
        var config = new LogConfig { SegmentBytes = 300 };
        var time = FakeTime.Create();
        var log = PartitionLog.Open(dir.Path, config, time, fs, flusher);
        for (int i = 0; i < 10; i++) await log.AppendAsync(Batch(7, 0, i));
        await log.AppendAsync(Batch(9, 0, 0, 1, transactional: true));
        await log.AppendAsync(Marker(9, 0, commit: false));
        Assert.True(log.SegmentCount > 2);
        var before = Directory.GetFiles(dir.Path, "*.snapshot").Order().ToList();
        Assert.NotEmpty(before);

        // The disk fills while the shutdown snapshot is written: the snapshot goes through the file-system seam, so
        // it is torn half-way and never renamed into place.
        fs.DiskFull = true;
        log.Dispose();
        Assert.Equal(before, Directory.GetFiles(dir.Path, "*.snapshot").Order().ToList());
        Assert.Single(Directory.GetFiles(dir.Path, "*.snapshot.tmp"));

        fs.DiskFull = false;
        using var reopened = PartitionLog.Open(dir.Path, config, time, fs, flusher);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.snapshot.tmp"));
        Assert.Equal(9, (await reopened.AppendAsync(Batch(7, 0, 9))).BaseOffset); // a retry still gets its offset
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(reopened, Batch(7, 0, 11)));
        Assert.Equal(12, reopened.LastStableOffset);
        Assert.Equal(9, Assert.Single(reopened.AbortedTransactions(0, 100)).ProducerId);
    }

    [Fact]
    public async Task IdleProducersExpire()
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), time);
        log.ProducerIdExpirationMs = 1000;
        await log.AppendAsync(Batch(7, 0, 0));
        await log.AppendAsync(Batch(8, 0, 0, transactional: true));
        time.Advance(2000);
        Assert.Equal(1, log.ExpireProducers());
        Assert.Equal(8, Assert.Single(log.ActiveProducers()).ProducerId);
        await log.AppendAsync(Batch(7, 0, 5)); // forgotten: accepted at any sequence
    }

    [Fact]
    public async Task ReplayTakesTheLogAsWrittenEvenWhereItsSequencesJump()
    {
        // A producer forgotten on its leader is accepted at any sequence, so a valid log can hold sequences 0 then 5.
        // Replay used to check them as a new produce would, refuse the jump and forget the producer: its retry of the
        // batch at sequence 5 was then written a second time.
        using var dir = new TempDir();
        var time = FakeTime.Create();
        long written;
        using (var log = PartitionLog.Open(dir.Path, new LogConfig(), time))
        {
            log.ProducerIdExpirationMs = 1000;
            await log.AppendAsync(Batch(7, 0, 0));
            time.Advance(2000);
            Assert.Equal(1, log.ExpireProducers());
            written = (await log.AppendAsync(Batch(7, 0, 5))).BaseOffset;
        }

        foreach (var snapshot in Directory.GetFiles(dir.Path, "*.snapshot")) File.Delete(snapshot); // replay everything
        using var reopened = PartitionLog.Open(dir.Path, new LogConfig(), time);
        Assert.Equal(written, (await reopened.AppendAsync(Batch(7, 0, 5))).BaseOffset);
        Assert.Equal(2, reopened.LogEndOffset);
        Assert.Equal(StorageError.OutOfOrderSequence, await FailsWith(reopened, Batch(7, 0, 8)));
    }
}
