using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

/// <summary>
/// PartitionLog.TruncateTo (a follower cutting back to where it diverged from the leader): segments, offset and time
/// indexes, producer state, aborted transactions and epochs after the cut, after a reopen, and after a kill -9 at every
/// disk change of the truncation.
/// </summary>
public sealed class TruncationTests
{
    private const long T0 = 1_700_000_000_000;
    private static readonly LogConfig Small = new() { SegmentBytes = 300, IndexIntervalBytes = 50, FlushPolicy = FlushPolicy.PageCache };

    /// <summary>Batch <paramref name="i"/> of producer 7: two records at offsets 2i, 2i+1, sequences 2i, 2i+1, timestamps T0 + 100i + j.</summary>
    private static byte[] Idempotent(int i)
    {
        var b = new RecordBatchBuilder { ProducerId = 7, ProducerEpoch = 0, BaseSequence = 2 * i };
        for (int j = 0; j < 2; j++) b.Add(T0 + (100 * i) + j, System.Text.Encoding.UTF8.GetBytes($"k{i}"), System.Text.Encoding.UTF8.GetBytes($"v{(2 * i) + j}"));
        return b.Build();
    }

    private static byte[] Transactional(long pid, int seq) =>
        new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = 0, BaseSequence = seq, IsTransactional = true }
            .Add(T0, [1], System.Text.Encoding.UTF8.GetBytes("txn")).Build();

    private static byte[] Abort(long pid) =>
        new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = 0, IsTransactional = true, IsControl = true }
            .Add(T0, [0, 0, 0, 0], [0, 0, 0, 0, 0, 0]).Build();

    /// <summary>Twelve idempotent batches (offsets 0-23) over several segments; epoch 0 from offset 0, epoch 2 from 12.</summary>
    private static async Task<PartitionLog> TwelveBatches(string directory, Storage.FileSystem.ISegmentFileSystem? fs = null)
    {
        var log = fs is null ? PartitionLog.Open(directory, Small, FakeTime.Create()) : PartitionLog.Open(directory, Small, FakeTime.Create(), fs, LogFlusher.Shared);
        for (int i = 0; i < 12; i++)
        {
            if (i == 6) log.LeaderEpoch = 2;
            await log.AppendAsync(Idempotent(i));
        }

        return log;
    }

    private static void AssertHolds(PartitionLog log, long end)
    {
        Assert.Equal(end, log.LogEndOffset);
        Assert.Equal(end, log.HighWatermark);
        List<DecodedRecord> records = end == 0 ? [] : Batches.ReadAll(log);
        Assert.Equal(Enumerable.Range(0, (int)end).Select(o => (long)o), records.Select(r => r.Offset));
        Assert.All(records, r => Assert.Equal($"v{r.Offset}", Batches.Value(r)));
        for (long offset = 0; offset < end; offset++)
        {
            using var slice = log.Read(offset, 1); // the offset index must lead to the batch holding the offset
            var batch = new RecordBatchHeader(slice.Memory.Span);
            Assert.InRange(offset, batch.BaseOffset, batch.LastOffset);
        }

        // The time index and max timestamp know nothing of the removed batches.
        Assert.Equal(end == 0 ? -1 : end - 1, log.FindMaxTimestamp().Offset);
        Assert.Equal(-1, log.FindOffsetByTimestamp(T0 + (100 * (end / 2))).Offset);
        if (end > 0) Assert.Equal(end - 2, log.FindOffsetByTimestamp(T0 + (100 * ((end / 2) - 1))).Offset);
        if (end == 0) Assert.Empty(log.ActiveProducers());
        else Assert.Equal((int)end - 1, Assert.Single(log.ActiveProducers()).LastSequence);
    }

    /// <summary>The epoch entries of <see cref="TwelveBatches"/> cut at <paramref name="end"/>.</summary>
    private static (int, long)[] EpochsBelow(long end) => end > 12 ? [(0, 0L), (2, 12L)] : end > 0 ? [(0, 0L)] : [];

    [Fact]
    public async Task Truncation_across_segments_leaves_indexes_producers_and_epochs_as_if_the_rest_was_never_written()
    {
        using var dir = new TempDir();
        using (var log = await TwelveBatches(dir.Path))
        {
            Assert.True(log.SegmentCount >= 4, $"{log.SegmentCount} segments");
            int before = log.SegmentCount;
            log.TruncateTo(13); // inside the batch 12-13: the whole batch goes
            AssertHolds(log, 12);
            Assert.Equal(EpochsBelow(12), log.EpochEntries);
            Assert.True(log.SegmentCount < before);

            // Appends continue at the cut: the producer's batch 6 was removed, so it is new again, not a duplicate; its batch 5 is a duplicate.
            var retried = await log.AppendAsync(Idempotent(6));
            Assert.Equal((12L, 13L), (retried.BaseOffset, retried.LastOffset));
            var duplicate = await log.AppendAsync(Idempotent(5));
            Assert.Equal((10L, 11L), (duplicate.BaseOffset, duplicate.LastOffset));
            AssertHolds(log, 14);
            Assert.Equal(EpochsBelow(14), log.EpochEntries);
        }

        Assert.Empty(Directory.GetFiles(dir.Path, "*.deleted"));
        using (var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create()))
        {
            AssertHolds(reopened, 14);
            Assert.Equal(EpochsBelow(14), reopened.EpochEntries);
            Assert.Equal(14, (await reopened.AppendAsync(Idempotent(7))).BaseOffset); // sequence 14 follows 13
        }
    }

    [Fact]
    public async Task Truncation_to_every_offset_cuts_at_the_batch_boundary_at_or_below_it_and_survives_a_reopen()
    {
        for (long offset = 0; offset <= 24; offset++)
        {
            using var dir = new TempDir();
            long end = offset / 2 * 2;
            using (var log = await TwelveBatches(dir.Path))
            {
                log.TruncateTo(offset);
                AssertHolds(log, end);
                Assert.Equal(EpochsBelow(end), log.EpochEntries);
            }

            using (var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create()))
            {
                AssertHolds(reopened, end);
                Assert.Equal(EpochsBelow(end), reopened.EpochEntries);
                Assert.Equal(end, (await reopened.AppendAsync(Idempotent((int)(end / 2)))).BaseOffset); // stamped with epoch 0
                AssertHolds(reopened, end + 2);
                Assert.Equal(end == 0 ? [(0, 0L)] : EpochsBelow(end), reopened.EpochEntries);
            }
        }
    }

    [Fact]
    public async Task Truncating_away_an_abort_marker_reopens_its_transaction_and_drops_its_aborted_entry()
    {
        using var dir = new TempDir();
        using (var log = PartitionLog.Open(dir.Path, Small, FakeTime.Create()))
        {
            await log.AppendAsync(Transactional(8, 0));   // 0
            await log.AppendAsync(Abort(8));              // 1
            await log.AppendAsync(Transactional(9, 0));   // 2
            await log.AppendAsync(Abort(9));              // 3
            await log.AppendAsync(Batches.Make(2, 1));    // 4-5
            Assert.Equal(2, log.AbortedTransactions(0, 10).Count);
            Assert.Equal(6, log.LastStableOffset);

            log.TruncateTo(3);
            var kept = Assert.Single(log.AbortedTransactions(0, 10));
            Assert.Equal((8L, 0L, 1L), (kept.ProducerId, kept.FirstOffset, kept.LastOffset));
            Assert.Equal(2, log.LastStableOffset); // producer 9's transaction is open again
            Assert.Equal(2, log.ActiveProducers().Single(p => p.ProducerId == 9).CurrentTxnStartOffset);
        }

        using (var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create()))
        {
            Assert.Equal(8, Assert.Single(reopened.AbortedTransactions(0, 10)).ProducerId);
            Assert.Equal(2, reopened.LastStableOffset);
            await reopened.AppendAsync(Abort(9));
            Assert.Equal([8L, 9L], reopened.AbortedTransactions(0, 10).Select(a => a.ProducerId));
            Assert.Equal(4, reopened.LastStableOffset);
        }
    }

    [Fact]
    public async Task Truncation_below_the_log_start_empties_the_log_and_starts_it_at_the_offset()
    {
        using var dir = new TempDir();
        using (var log = await TwelveBatches(dir.Path))
        {
            log.DeleteRecordsBefore(16);
            log.TruncateTo(5);
            Assert.Equal((5L, 5L, 5L, 1), (log.LogStartOffset, log.LogEndOffset, log.HighWatermark, log.SegmentCount));
            Assert.Empty(log.ActiveProducers());
            Assert.Empty(log.EpochEntries);
            Assert.Equal(5, (await log.AppendAsync(Batches.Make(1, 1))).BaseOffset);
            Assert.Equal([(2, 5L)], log.EpochEntries);
        }

        using var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create());
        Assert.Equal((5L, 6L), (reopened.LogStartOffset, reopened.LogEndOffset));
        Assert.Equal([(2, 5L)], reopened.EpochEntries);
        Assert.Equal("v-0", Batches.Value(Assert.Single(Batches.ReadAll(reopened))));
    }

    /// <summary>The same for starting over at an offset past the log end: the old log, a prefix of it, or an empty one; exactly the new start once returned.</summary>
    [Fact]
    public async Task A_crash_at_any_step_of_starting_over_leaves_a_prefix_or_an_empty_log()
    {
        int completedAt = -1;
        for (int crashAfter = 0; crashAfter < 200 && completedAt < 0; crashAfter++)
        {
            using var dir = new TempDir();
            var fs = new CrashingFileSystem();
            var log = await TwelveBatches(dir.Path, fs);
            fs.CrashAfter(crashAfter);
            try
            {
                log.TruncateFullyAndStartAt(30);
                if (!fs.Crashed)
                {
                    completedAt = crashAfter;
                }
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
            }

            fs.CrashAfter(0);
            log.Dispose();

            using var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create());
            long start = reopened.LogStartOffset, end = reopened.LogEndOffset;
            if (completedAt >= 0 || end > 24)
            {
                Assert.Equal((30L, 30L), (start, end));
                Assert.Empty(reopened.EpochEntries);
                Assert.Empty(reopened.ActiveProducers());
            }
            else
            {
                Assert.Equal(0, start);
                AssertHolds(reopened, end);
                Assert.Equal(EpochsBelow(end), reopened.EpochEntries);
            }

            Assert.Equal(end, (await reopened.AppendAsync(Batches.Make(1, 1))).BaseOffset);
        }

        Assert.True(completedAt > 10, $"starting over completed after {completedAt} disk changes");
    }

    [Fact]
    public async Task A_new_follower_starts_at_the_leaders_log_start_and_replicates_from_there()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        using var leader = await TwelveBatches(leaderDir.Path);
        leader.DeleteRecordsBefore(16);
        using (var follower = PartitionLog.Open(followerDir.Path, Small, FakeTime.Create()))
        {
            await follower.AppendAsync(Batches.Make(1, 1)); // a stale record of its own
            follower.TruncateFullyAndStartAt(leader.LogStartOffset);
            Assert.Equal((16L, 16L, 16L), (follower.LogStartOffset, follower.LogEndOffset, follower.HighWatermark));
            Assert.Empty(follower.EpochEntries);
            byte[] fetched;
            using (var slice = leader.Read(16, 1 << 20))
            {
                fetched = slice.Memory.ToArray();
            }

            long end = await follower.AppendReplicatedAsync(fetched);
            Assert.True(end > 16);
            Assert.Equal([(2, 16L)], follower.EpochEntries);
            Assert.Equal(leader.EndOffsetForEpoch(1), follower.EndOffsetForEpoch(1));
        }

        using var reopened = PartitionLog.Open(followerDir.Path, Small, FakeTime.Create());
        Assert.Equal(16, reopened.LogStartOffset);
        Assert.Equal("v16", Batches.Value(Batches.ReadAll(reopened)[0]));
        Assert.Equal((int)reopened.LogEndOffset - 1, Assert.Single(reopened.ActiveProducers()).LastSequence); // sequence = offset in these batches
    }

    [Fact]
    public async Task Truncation_lowers_the_cleaners_first_dirty_offset_to_the_cut()
    {
        using var dir = new TempDir();
        using (var log = await TwelveBatches(dir.Path))
        {
            log.WriteCleanerCheckpoint(new Cleaning.CleanerCheckpoint.Entry(20, 5));
            log.TruncateTo(10);
            Assert.Equal(new Cleaning.CleanerCheckpoint.Entry(10, 5), log.CleanerCheckpointEntry);
            log.TruncateTo(14); // past the end now: nothing changes
            log.TruncateTo(4);
            Assert.Equal(4, log.CleanerCheckpointEntry.FirstDirtyOffset);
        }

        using var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create());
        Assert.Equal(new Cleaning.CleanerCheckpoint.Entry(4, 5), reopened.CleanerCheckpointEntry);
    }

    [Fact]
    public async Task Truncating_at_or_past_the_log_end_changes_nothing()
    {
        using var dir = new TempDir();
        using var log = await TwelveBatches(dir.Path);
        log.TruncateTo(24);
        log.TruncateTo(100);
        AssertHolds(log, 24);
        Assert.Equal(EpochsBelow(24), log.EpochEntries);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.TruncateTo(-1));
    }

    /// <summary>
    /// kill -9 at every disk change of a truncation (and right after it returned): the reopened log is a prefix of the
    /// old one at or above the cut (exactly the cut once the call returned), with producer state, aborted transactions
    /// and epochs that fit what it holds.
    /// </summary>
    [Fact]
    public async Task A_crash_at_any_step_of_truncation_leaves_a_prefix_and_never_brings_back_what_a_finished_one_removed()
    {
        int completedAt = -1;
        for (int crashAfter = 0; crashAfter < 400 && completedAt < 0; crashAfter++)
        {
            using var dir = new TempDir();
            var fs = new CrashingFileSystem();
            var log = await TwelveBatches(dir.Path, fs);
            await log.AppendAsync(Transactional(8, 0)); // 24
            await log.AppendAsync(Abort(8));            // 25
            await log.AppendAsync(Idempotent(12));      // 26-27, sequence 24-25
            var original = log.EpochEntries;

            fs.CrashAfter(crashAfter);
            try
            {
                log.TruncateTo(13);
                if (!fs.Crashed)
                {
                    completedAt = crashAfter;
                }
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
            }

            fs.CrashAfter(0); // the process dies here, before anything else reaches the disk
            log.Dispose();

            using var reopened = PartitionLog.Open(dir.Path, Small, FakeTime.Create());
            long end = reopened.LogEndOffset;
            if (completedAt >= 0)
            {
                Assert.Equal(12, end);
            }

            Assert.InRange(end, 12, 28);
            var records = Batches.ReadAll(reopened);
            Assert.Equal(Enumerable.Range(0, (int)end).Select(o => (long)o), records.Select(r => r.Offset));
            Assert.All(records.Where(r => r.Offset < 24), r => Assert.Equal($"v{r.Offset}", Batches.Value(r)));
            Assert.Equal(original.Where(e => e.StartOffset < end), reopened.EpochEntries);
            Assert.Equal(end > 25 ? 1 : 0, reopened.AbortedTransactions(0, 100).Count);
            var seven = reopened.ActiveProducers().Single(p => p.ProducerId == 7);
            Assert.Equal(end > 26 ? 25 : (int)Math.Min(end, 24) - 1, seven.LastSequence);

            // And it goes on from there.
            int next = seven.LastSequence + 1;
            if (end <= 24)
            {
                Assert.Equal(end, (await reopened.AppendAsync(Idempotent(next / 2))).BaseOffset);
            }
        }

        Assert.True(completedAt > 20, $"the truncation completed after {completedAt} disk changes");
    }
}
