using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage.Tests;

/// <summary>
/// The log's side of replication: leader epochs stamped into batches and cached in <c>leader-epoch-checkpoint</c>,
/// OffsetForLeaderEpoch answers (Kafka's LeaderEpochFileCacheTest cases), and a follower's append of the leader's bytes.
/// </summary>
public sealed class ReplicationTests
{
    private static readonly LogConfig PageCache = new() { FlushPolicy = FlushPolicy.PageCache };

    private static byte[] Batch(long pid, short epoch, int seq, int count = 1, bool transactional = false)
    {
        var b = new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, BaseSequence = seq, IsTransactional = transactional };
        for (int i = 0; i < count; i++) b.Add(1_700_000_000_000 + i, [(byte)i]);
        return b.Build();
    }

    private static byte[] Marker(long pid, short epoch, bool commit) =>
        new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, IsTransactional = true, IsControl = true }
            .Add(1_700_000_000_000, [0, 0, 0, commit ? (byte)1 : (byte)0], [0, 0, 0, 0, 0, 0]).Build();

    /// <summary>The stored batches from <paramref name="from"/> to the high watermark, as a fetch would return them.</summary>
    private static byte[] Fetch(PartitionLog log, long from)
    {
        using var slice = log.Read(from, 1 << 20);
        return slice.Memory.ToArray();
    }

    private static List<int> LeaderEpochs(byte[] bytes)
    {
        var epochs = new List<int>();
        for (int p = 0; p < bytes.Length; p += RecordBatchHeader.ReadTotalSize(bytes.AsSpan(p)))
        {
            epochs.Add(new RecordBatchHeader(bytes.AsSpan(p)).PartitionLeaderEpoch);
        }

        return epochs;
    }

    private static string Checkpoint(string directory) => File.ReadAllText(Path.Combine(directory, "leader-epoch-checkpoint"));

    [Fact]
    public async Task Leader_appends_stamp_the_epoch_and_the_checkpoint_records_where_each_epoch_starts()
    {
        using var dir = new TempDir();
        using (var log = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create()))
        {
            Assert.Equal(-1, log.LatestEpoch);
            Assert.Equal("0\n0\n", Checkpoint(dir.Path));
            log.LeaderEpoch = 3;
            await log.AppendAsync(Batches.Make(2, 1));
            await log.AppendAsync(Batches.Make(1, 2));
            log.LeaderEpoch = 5;
            await log.AppendAsync(Batches.Make(3, 3));
            Assert.Equal(5, log.LatestEpoch);
            Assert.Equal([(3, 0L), (5, 3L)], log.EpochEntries);
            Assert.Equal("0\n2\n3 0\n5 3\n", Checkpoint(dir.Path));

            var stored = Fetch(log, 0);
            Assert.Equal([3, 3, 5], LeaderEpochs(stored));
            // The epoch is outside the CRC: the stored batches still validate.
            Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(stored, 1 << 20, out _));
        }

        using (var reopened = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create()))
        {
            Assert.Equal([(3, 0L), (5, 3L)], reopened.EpochEntries);
            Assert.Equal((3, 3L), reopened.EndOffsetForEpoch(4));
            Assert.Equal((5, 6L), reopened.EndOffsetForEpoch(5));
        }
    }

    [Fact]
    public async Task A_missing_or_corrupt_checkpoint_is_rebuilt_from_the_batches_and_entries_past_the_log_end_are_dropped()
    {
        using var dir = new TempDir();
        var config = new LogConfig { FlushPolicy = FlushPolicy.PageCache, SegmentBytes = 300 };
        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            foreach (int epoch in new[] { 1, 1, 2, 2, 4, 4, 4 })
            {
                log.LeaderEpoch = epoch;
                await log.AppendAsync(Batches.Make(2, epoch));
            }

            Assert.True(log.SegmentCount > 2);
            log.Roll();
            log.LeaderEpoch = 6;
            await log.AppendAsync(Batches.Make(2, 6));
            Assert.Equal([(1, 0L), (2, 4L), (4, 8L), (6, 14L)], log.EpochEntries);
        }

        string path = Path.Combine(dir.Path, "leader-epoch-checkpoint");
        File.Delete(path);
        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            Assert.Equal([(1, 0L), (2, 4L), (4, 8L), (6, 14L)], log.EpochEntries);
        }

        File.WriteAllText(path, "0\n3\n1 0\n2 4\n");
        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            Assert.Equal([(1, 0L), (2, 4L), (4, 8L), (6, 14L)], log.EpochEntries); // wrong count: corrupt, rebuilt
        }

        // An entry past the log end (its batches lost in a crash) goes; after an unclean stop the active segment's newer
        // epochs are read back (a crash between an append and its checkpoint write loses only an entry of that segment).
        File.WriteAllText(path, "0\n4\n1 0\n2 4\n4 8\n9 100\n");
        File.Delete(Path.Combine(dir.Path, PartitionLog.CleanShutdownFile));
        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            Assert.Equal([(1, 0L), (2, 4L), (4, 8L), (6, 14L)], log.EpochEntries);
            Assert.Equal("0\n4\n1 0\n2 4\n4 8\n6 14\n", Checkpoint(dir.Path));
        }
    }

    [Fact]
    public async Task Moving_the_log_start_moves_the_first_epoch_entry_up_to_it()
    {
        using var dir = new TempDir();
        using (var log = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create()))
        {
            log.LeaderEpoch = 1;
            await log.AppendAsync(Batches.Make(4, 1)); // 0-3
            log.LeaderEpoch = 3;
            await log.AppendAsync(Batches.Make(4, 2)); // 4-7
            log.DeleteRecordsBefore(2);
            Assert.Equal([(1, 2L), (3, 4L)], log.EpochEntries);
            Assert.Equal((0, 2L), log.EndOffsetForEpoch(0));
            log.DeleteRecordsBefore(6);
            Assert.Equal([(3, 6L)], log.EpochEntries);
            Assert.Equal((1, 6L), log.EndOffsetForEpoch(1));
        }

        using var reopened = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create());
        Assert.Equal([(3, 6L)], reopened.EpochEntries);
        Assert.Equal("0\n1\n3 6\n", Checkpoint(dir.Path));
    }

    /// <summary>Kafka's LeaderEpochFileCacheTest cases for endOffsetFor, on the cache directly.</summary>
    [Fact]
    public void End_offset_for_epoch_follows_kafka()
    {
        using var dir = new TempDir();
        var fs = LocalFileSystem.Instance;
        using var segment = LogSegment.Create(fs, dir.Path, 0, 0);
        LeaderEpochCache Fresh()
        {
            File.Delete(Path.Combine(dir.Path, LeaderEpochCache.FileName));
            return LeaderEpochCache.Load(fs, dir.Path, [segment], cleanShutdown: true);
        }

        // No epoch recorded, or UNDEFINED requested: undefined.
        var cache = Fresh();
        Assert.Equal((-1, -1L), cache.EndOffsetFor(0, 0));
        Assert.Equal((-1, -1L), cache.EndOffsetFor(-1, 73));

        // Below the first epoch: the requested epoch and the first start offset (Kafka since 2.1).
        cache.Assign(5, 11);
        cache.Assign(6, 12);
        cache.Assign(7, 13);
        Assert.Equal((4, 11L), cache.EndOffsetFor(4, 0));
        Assert.Equal((-1, -1L), cache.EndOffsetFor(8, 20)); // above the latest
        Assert.Equal((7, 20L), cache.EndOffsetFor(7, 20)); // the latest: the log end

        // The latest epoch assigned again at an earlier offset replaces the entries from there.
        cache.Assign(7, 12);
        Assert.Equal((5, 12L), cache.EndOffsetFor(5, 0));
        Assert.Equal((5, 12L), cache.EndOffsetFor(6, 0));

        // The first offset of the next epoch ends an older one; repeated assigns of an epoch keep its first offset.
        cache = Fresh();
        cache.Assign(1, 5);
        cache.Assign(1, 6);
        cache.Assign(1, 7);
        cache.Assign(2, 8);
        cache.Assign(2, 9);
        Assert.Equal([(1, 5L), (2, 8L)], cache.Entries);
        Assert.Equal((1, 8L), cache.EndOffsetFor(1, 10));
        Assert.Equal((2, 10L), cache.EndOffsetFor(2, 10));

        // No exact epoch: the largest one below it, ended by the next one's start.
        cache = Fresh();
        cache.Assign(0, 10);
        cache.Assign(2, 13);
        cache.Assign(4, 17);
        Assert.Equal((0, 13L), cache.EndOffsetFor(1, 20));
        Assert.Equal((2, 17L), cache.EndOffsetFor(2, 20));
        Assert.Equal((2, 17L), cache.EndOffsetFor(3, 20));
        Assert.Equal((4, 20L), cache.EndOffsetFor(4, 20));

        // A lower epoch assigned later replaces the higher ones (Kafka's assign); truncation from the end drops entries at or after it.
        cache.Assign(3, 15);
        Assert.Equal([(0, 10L), (2, 13L), (3, 15L)], cache.Entries);
        cache.TruncateFromEnd(13);
        Assert.Equal([(0, 10L)], cache.Entries);
        Assert.Equal("0\n1\n0 10\n", Checkpoint(dir.Path));
    }

    [Fact]
    public async Task A_follower_appends_the_leaders_bytes_at_the_leaders_offsets_and_refuses_a_resend()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        using var follower = PartitionLog.Open(followerDir.Path, PageCache, FakeTime.Create());
        leader.LeaderEpoch = 2;
        await leader.AppendAsync(Batches.Make(3, 10, "a"));
        await leader.AppendAsync(Batches.Make(2, 11, "b"));
        leader.LeaderEpoch = 4;
        await leader.AppendAsync(Batches.Make(1, 12, "c"));

        var fetched = Fetch(leader, 0);
        Assert.Equal(6, await follower.AppendReplicatedAsync(fetched));
        Assert.Equal(6, follower.LogEndOffset);
        Assert.Equal(6, follower.HighWatermark);
        Assert.Equal(fetched, Fetch(follower, 0)); // byte for byte: offsets and epochs as the leader wrote them
        Assert.Equal([(2, 0L), (4, 5L)], follower.EpochEntries);
        Assert.Equal(leader.EndOffsetForEpoch(2), follower.EndOffsetForEpoch(2));

        await leader.AppendAsync(Batches.Make(2, 13, "d")); // 6-7
        await leader.AppendAsync(Batches.Make(2, 14, "e")); // 8-9
        var again = await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendReplicatedAsync(fetched));
        Assert.Equal(StorageError.OffsetOutOfRange, again.Error);
        Assert.Contains("ends at 6", again.Message, StringComparison.Ordinal);

        // Contiguous request framing: batches 6-7 then 8-9 pass; 6-7 then 6-7 does not.
        var next = Fetch(leader, 6);
        var firstOfNext = next[..RecordBatchHeader.ReadTotalSize(next)];
        var notContiguous = await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendReplicatedAsync((byte[])[.. firstOfNext, .. firstOfNext]));
        Assert.Equal(StorageError.InvalidRecord, notContiguous.Error);
        var corrupt = (byte[])next.Clone();
        corrupt[^1] ^= 0xFF;
        Assert.Equal(StorageError.CorruptMessage, (await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendReplicatedAsync(corrupt))).Error);
        Assert.Equal(6, follower.LogEndOffset);

        Assert.Equal(10, await follower.AppendReplicatedAsync(next));
        Assert.Equal(Batches.ReadAll(leader).Select(Batches.Value), Batches.ReadAll(follower).Select(Batches.Value));
    }

    /// <summary>kill -9 at every disk change of a follower append that brings two new epochs: the log opens, and its epoch cache fits what it holds.</summary>
    [Fact]
    public async Task A_crash_at_any_step_of_a_follower_append_leaves_epochs_that_fit_the_log()
    {
        using var leaderDir = new TempDir();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        leader.LeaderEpoch = 1;
        await leader.AppendAsync(Batches.Make(2, 1)); // 0-1
        leader.LeaderEpoch = 2;
        await leader.AppendAsync(Batches.Make(2, 2)); // 2-3
        leader.LeaderEpoch = 4;
        await leader.AppendAsync(Batches.Make(2, 3)); // 4-5
        var fetched = Fetch(leader, 0);
        int completedAt = -1;
        for (int crashAfter = 0; crashAfter < 100 && completedAt < 0; crashAfter++)
        {
            using var dir = new TempDir();
            var fs = new CrashingFileSystem();
            var follower = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create(), fs, LogFlusher.Shared);
            fs.CrashAfter(crashAfter);
            try
            {
                await follower.AppendReplicatedAsync(fetched);
                if (!fs.Crashed)
                {
                    completedAt = crashAfter;
                }
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
            }

            fs.CrashAfter(0);
            follower.Dispose();
            using var reopened = PartitionLog.Open(dir.Path, PageCache, FakeTime.Create());
            long end = reopened.LogEndOffset;
            Assert.True(end is 0 or 6, $"crash after {crashAfter}: log end {end}");
            Assert.Equal(leader.EpochEntries.Where(e => e.StartOffset < end), reopened.EpochEntries);
        }

        Assert.True(completedAt > 10, $"the append completed after {completedAt} disk changes");
    }

    [Fact]
    public async Task Durable_follower_appends_complete_after_the_sync()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        var fs = new FaultyFileSystem();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        using var follower = PartitionLog.Open(followerDir.Path, new LogConfig(), FakeTime.Create(), fs, LogFlusher.Shared);
        await leader.AppendAsync(Batches.Make(1, 9));
        await leader.AppendAsync(Batches.Make(3, 10));
        Assert.Equal(1, await follower.AppendReplicatedAsync(Fetch(leader, 0)[..RecordBatchHeader.ReadTotalSize(Fetch(leader, 0))]));
        fs.HoldFlushes = true;
        var append = follower.AppendReplicatedAsync(Fetch(leader, 1)).AsTask();
        Assert.True(await fs.FlushEntered.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(4, follower.LogEndOffset);
        Assert.Equal(1, follower.HighWatermark);
        Assert.False(append.IsCompleted);
        fs.HoldFlushes = false;
        fs.FlushGate.Set();
        Assert.Equal(4, await append);
        Assert.Equal(4, follower.HighWatermark);
    }

    [Fact]
    public async Task A_follower_records_idempotent_producers_so_a_retry_after_it_becomes_leader_gets_the_original_offsets()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        using var follower = PartitionLog.Open(followerDir.Path, PageCache, FakeTime.Create());
        await leader.AppendAsync(Batches.Make(3, 10));              // 0-2
        var written = await leader.AppendAsync(Batch(7, 0, 0, 2));  // 3-4
        await leader.AppendAsync(Batch(7, 0, 2, 2));                // 5-6
        Assert.Equal(7, await follower.AppendReplicatedAsync(Fetch(leader, 0)));

        // Leadership moves; the producer's retry of its first batch reaches the new leader.
        follower.LeaderEpoch = 1;
        var retry = await follower.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal((written.BaseOffset, written.LastOffset), (retry.BaseOffset, retry.LastOffset));
        Assert.Equal(7, follower.LogEndOffset);
        Assert.Equal(StorageError.OutOfOrderSequence, (await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendAsync(Batch(7, 0, 9)))).Error);
        Assert.Equal(7, (await follower.AppendAsync(Batch(7, 0, 4))).BaseOffset);
        Assert.Equal([(0, 0L), (1, 7L)], follower.EpochEntries);
    }

    [Fact]
    public async Task A_follower_never_refuses_what_the_leader_accepted()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        var time = FakeTime.Create();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, time);
        using var follower = PartitionLog.Open(followerDir.Path, PageCache, time);
        await leader.AppendAsync(Batch(7, 0, 0, 2));
        Assert.Equal(2, await follower.AppendReplicatedAsync(Fetch(leader, 0)));

        // The leader forgot producer 7 (expired), so it took sequence 40: a follower checking sequences would refuse it
        // and diverge from the leader.
        leader.ProducerIdExpirationMs = 0;
        time.Advance(1);
        leader.ExpireProducers();
        Assert.Empty(leader.ActiveProducers());
        await leader.AppendAsync(Batch(7, 0, 40));
        Assert.Equal(3, await follower.AppendReplicatedAsync(Fetch(leader, 2)));
        var producer = Assert.Single(follower.ActiveProducers());
        Assert.Equal((7L, (short)0, 40), (producer.ProducerId, producer.Epoch, producer.LastSequence));
    }

    [Fact]
    public async Task Transactions_and_markers_appended_by_a_follower_give_the_leaders_aborted_transactions_and_stable_offset()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        using (var follower = PartitionLog.Open(followerDir.Path, PageCache, FakeTime.Create()))
        {
            await leader.AppendAsync(Batch(7, 0, 0, 2, transactional: true));  // 0-1, aborted
            await leader.AppendAsync(Batches.Make(2, 10));                      // 2-3
            await leader.AppendAsync(Batch(8, 0, 0, 1, transactional: true));  // 4, committed
            await leader.AppendAsync(Marker(7, 0, commit: false));             // 5
            await leader.AppendAsync(Marker(8, 0, commit: true));              // 6
            await leader.AppendAsync(Batch(9, 0, 0, 1, transactional: true));  // 7, still open
            await leader.AppendAsync(Batch(7, 1, 0, 1, transactional: true));  // 8, aborted by a fencing marker
            await leader.AppendAsync(Marker(7, 2, commit: false));             // 9

            long end = 0;
            foreach (var part in new[] { 0L, 4, 7 })
            {
                using var slice = leader.Read(part, 1 << 20, maxOffsetExclusive: part == 0 ? 4 : part == 4 ? 7 : null);
                end = await follower.AppendReplicatedAsync(slice.Memory.ToArray());
            }

            Assert.Equal(10, end);
            Assert.Equal(leader.AbortedTransactions(0, 100), follower.AbortedTransactions(0, 100));
            Assert.Equal(2, follower.AbortedTransactions(0, 100).Count);
            Assert.Equal(leader.LastStableOffset, follower.LastStableOffset);
            Assert.Equal(7, follower.LastStableOffset);
            Assert.Equal(leader.ActiveProducers(), follower.ActiveProducers());
        }

        using var reopened = PartitionLog.Open(followerDir.Path, PageCache, FakeTime.Create());
        Assert.Equal(leader.AbortedTransactions(0, 100), reopened.AbortedTransactions(0, 100));
        Assert.Equal(7, reopened.LastStableOffset);
    }

    [Fact]
    public async Task A_follower_replicates_a_compacted_log_with_its_gaps_and_emptied_batches()
    {
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        var time = FakeTime.Create();
        var compacted = new LogConfig { FlushPolicy = FlushPolicy.PageCache, CleanupCompact = true, CleanupDelete = false, SegmentBytes = 600, IndexIntervalBytes = 128, MinCleanableDirtyRatio = 0.5 };
        using var leader = PartitionLog.Open(leaderDir.Path, compacted, time);
        var model = new KeyedWorkload();
        for (int round = 0; round < 20; round++)
            await model.AppendAsync(leader, [.. Enumerable.Range(0, 5).Select(k => ($"k{k}", (string?)$"v{round}"))], time.NowMs);
        leader.Roll();
        await model.AppendAsync(leader, [("sentinel", "last")], time.NowMs);
        using (var cleaner = Cleaners.For(leader, time))
            Assert.True(cleaner.Clean(leader).Cleaned);
        var cleaned = Fetch(leader, 0);
        // What the cleaner leaves is what a follower must take: batches with fewer records than offsets, and gaps.
        Assert.True(cleaned.Length > 0);

        using var follower = PartitionLog.Open(followerDir.Path, new LogConfig { FlushPolicy = FlushPolicy.PageCache, CleanupCompact = true }, FakeTime.Create());
        long end = 0;
        for (long from = 0; from < leader.HighWatermark;)
        {
            var chunk = Fetch(leader, from);
            end = await follower.AppendReplicatedAsync(chunk);
            from = end;
        }
        Assert.Equal(leader.LogEndOffset, follower.LogEndOffset);
        Assert.Equal(AllBatches(leader), AllBatches(follower)); // the same bytes at the same offsets, whatever the segments
        Assert.Equal(KeyedWorkload.ReadAll(leader).Select(r => r.Offset), KeyedWorkload.ReadAll(follower).Select(r => r.Offset));
    }

    /// <summary>Every stored batch from the log start to the high watermark, read fetch by fetch.</summary>
    private static byte[] AllBatches(PartitionLog log)
    {
        var all = new List<byte>();
        for (long from = log.LogStartOffset; from < log.HighWatermark;)
        {
            var chunk = Fetch(log, from);
            int position = 0;
            while (chunk.Length - position >= RecordBatchHeader.HeaderSize && RecordBatchHeader.ReadTotalSize(chunk.AsSpan(position)) <= chunk.Length - position)
            {
                var header = new RecordBatchHeader(chunk.AsSpan(position));
                all.AddRange(chunk.AsSpan(position, header.TotalSize).ToArray());
                from = header.LastOffset + 1;
                position += header.TotalSize;
            }
            Assert.True(position > 0, "a fetch returned no whole batch");
        }
        return [.. all];
    }

    [Fact]
    public async Task AFollowingReplicaRefusesLeaderAppendsAndTakesItsLeadersBatches()
    {
        // Found by the fault suite: a produce (or a transaction marker) that passed its leadership check just before
        // the broker became a follower was appended after the follower's truncation, in place of its leader's batch at
        // that offset, and the replicas differed from then on.
        using var leaderDir = new TempDir();
        using var followerDir = new TempDir();
        using var leader = PartitionLog.Open(leaderDir.Path, PageCache, FakeTime.Create());
        using var follower = PartitionLog.Open(followerDir.Path, PageCache, FakeTime.Create());
        leader.LeaderEpoch = 1;
        await leader.AppendAsync(Batch(-1, -1, -1, 3));

        follower.Follow(leaderEpoch: 1);
        var refused = await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendAsync(Batch(-1, -1, -1, 1)));
        Assert.Equal(StorageError.NotLeader, refused.Error);
        Assert.Equal(0, follower.LogEndOffset);
        // A fetch from the leader of an earlier epoch, still in flight when this replica moved on, is not appended.
        var stale = await Assert.ThrowsAsync<StorageException>(async () => await follower.AppendReplicatedAsync(Fetch(leader, 0), followedEpoch: 0));
        Assert.Equal(StorageError.NotLeader, stale.Error);
        Assert.Equal(0, follower.LogEndOffset);
        await follower.AppendReplicatedAsync(Fetch(leader, 0), followedEpoch: 1);
        Assert.Equal(Fetch(leader, 0), Fetch(follower, 0));

        follower.Following = false; // it leads now
        follower.LeaderEpoch = 2;
        Assert.Equal(3, (await follower.AppendAsync(Batch(-1, -1, -1, 1))).BaseOffset);
    }
}
