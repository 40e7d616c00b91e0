using Tributary.Broker.Groups;
using Tributary.Broker.Handlers;
using Tributary.Broker.Metadata;
using Tributary.Broker.Replication;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Transactions;

/// <summary>
/// Writes the commit or abort markers of a decided transaction where Kafka writes them: on the leader of each of its
/// partitions (Kafka's TransactionMarkerChannelManager). A partition led here is appended to directly; one led by
/// another broker gets a WriteTxnMarkers request, grouped per leader. A marker counts once the partition's in-sync
/// replicas hold it (acks=all), so a leader failing next cannot lose it and leave the transaction half visible. A
/// follower's own copy of a partition is never written: its log is the leader's, byte for byte. A marker on a partition
/// of <c>__consumer_offsets</c> (the transaction sent offsets to a group there) is also handed to the group
/// coordinator once replicated, which then commits or drops the producer's pending offsets.
/// </summary>
internal sealed class TransactionMarkers(TopicCatalog topics, Func<ReplicaManager?> replicas, GroupCoordinator? groups, InterBrokerClient? remote, TimeProvider time)
{
    /// <summary>WriteTxnMarkers v1 (flexible): what Kafka 2.8+ brokers send.</summary>
    private const short MarkerVersion = 1;

    /// <summary>How long a marker waits for its followers before the write fails (the coordinator retries it).</summary>
    private const int ReplicationTimeoutMs = 30_000;

    /// <summary>
    /// Writes the markers; returns the partitions that failed with why (empty when all were written). A deleted
    /// topic or partition has nothing left to mark and counts as written. <paramref name="epochBumped"/>: the epoch is
    /// above the transaction's records', so a partition led here refuses the marker if it has seen that epoch already
    /// (a leader elsewhere gets WriteTxnMarkers v1, which cannot say so, and applies Kafka's older rule: not below).
    /// </summary>
    public async Task<List<string>> WriteAsync(long producerId, short epoch, bool commit, int coordinatorEpoch,
        IEnumerable<(string Topic, int Partition)> partitions, bool epochBumped = false)
    {
        var image = topics.Image;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var failures = new List<string>();
        var local = new List<(string Topic, int Partition, Task<ErrorCode> Write)>();
        var byLeader = new Dictionary<int, List<(string Topic, int Partition)>>();
        foreach (var (topic, partition) in partitions)
        {
            var state = image.Partition(topic, partition);
            if (state is null && topics.GetPartition(topic, partition) is null) continue; // deleted
            var leader = state?.Leader ?? topics.NodeId;
            if (leader == topics.NodeId || remote is null)
                local.Add((topic, partition, AppendAsync(topics, replicas(), groups, topic, partition, producerId, epoch, commit, coordinatorEpoch, now, epochBumped)));
            else if (leader < 0)
                failures.Add($"{topic}-{partition}: no leader");
            else
            {
                if (!byLeader.TryGetValue(leader, out var list)) byLeader[leader] = list = [];
                list.Add((topic, partition));
            }
        }
        var sends = byLeader.Select(l => SendAsync(l.Key, l.Value, producerId, epoch, commit, coordinatorEpoch)).ToList();
        foreach (var (topic, partition, write) in local)
            if (await write.ConfigureAwait(false) is var error && error != ErrorCode.None)
                failures.Add($"{topic}-{partition}: {error}");
        foreach (var send in sends)
            failures.AddRange(await send.ConfigureAwait(false));
        return failures;
    }

    private async Task<List<string>> SendAsync(int leader, List<(string Topic, int Partition)> partitions, long producerId, short epoch, bool commit, int coordinatorEpoch)
    {
        var marker = new WriteTxnMarkersRequest.WritableTxnMarker
        {
            ProducerId = producerId,
            ProducerEpoch = epoch,
            TransactionResult = commit,
            CoordinatorEpoch = coordinatorEpoch,
            Topics = [.. partitions.GroupBy(p => p.Topic).Select(g => new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = g.Key, PartitionIndexes = [.. g.Select(p => p.Partition)] })],
        };
        try
        {
            var response = await remote!.SendAsync<WriteTxnMarkersResponse>(leader, new WriteTxnMarkersRequest { Markers = [marker] }, MarkerVersion, CancellationToken.None)
                .ConfigureAwait(false);
            var failures = new List<string>();
            var answered = 0;
            foreach (var result in response.Markers)
                foreach (var topic in result.Topics)
                    foreach (var partition in topic.Partitions)
                    {
                        answered++;
                        if (partition.ErrorCode != 0)
                            failures.Add($"{topic.Name}-{partition.PartitionIndex}: {(ErrorCode)partition.ErrorCode} from broker {leader}");
                    }
            if (answered < partitions.Count) failures.Add($"broker {leader} answered {answered} of {partitions.Count} partitions");
            return failures;
        }
        catch (IOException e)
        {
            return [$"{partitions.Count} partition(s) led by broker {leader}: {e.Message}"];
        }
    }

    /// <summary>
    /// Appends one marker to a partition led here and waits until its in-sync replicas hold it (WriteTxnMarkers' and
    /// the local coordinator's path; the one place markers are appended on a leader); the error code a WriteTxnMarkers
    /// response carries for it. On <c>__consumer_offsets</c> it then waits for <paramref name="groups"/> to apply it.
    /// </summary>
    public static async Task<ErrorCode> AppendAsync(TopicCatalog topics, ReplicaManager? replicas, GroupCoordinator? groups, string topic, int partition,
        long producerId, short epoch, bool commit, int coordinatorEpoch, long nowMs, bool epochBumped = false)
    {
        if (topics.IsPartitionOffline(topic, partition)) return ErrorCode.KafkaStorageError;
        if (topics.IsLedElsewhere(topic, partition)) return ErrorCode.NotLeaderOrFollower;
        if (topics.GetPartition(topic, partition) is not { } log) return ErrorCode.UnknownTopicOrPartition;
        var key = new byte[] { 0, 0, 0, commit ? (byte)1 : (byte)0 }; // version 0, type
        var value = new byte[6]; // version 0, coordinator epoch
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(value.AsSpan(2), coordinatorEpoch);
        var batch = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, IsTransactional = true, IsControl = true }
            .Add(nowMs, key, value).Build();
        try
        {
            var appended = await log.AppendAsync(batch, epochBumped ? AppendOrigin.EpochBumpingMarker : AppendOrigin.Client).ConfigureAwait(false);
            if (replicas is not null)
            {
                var replicated = await replicas.WaitForReplicationAsync(topic, partition, appended.LastOffset + 1, minInSync: 1, ReplicationTimeoutMs, CancellationToken.None)
                    .ConfigureAwait(false);
                if (replicated != ErrorCode.None) return replicated;
            }
            // Only now, as Kafka's scheduleHandleTxnCompletion: offsets made visible before the marker is safe on the
            // in-sync replicas could be lost with this leader while a reader already acted on them.
            if (topic == GroupSettings.OffsetsTopic && groups is not null)
                await groups.CompleteTransactionAsync(partition, producerId, epoch, commit, appended.BaseOffset).ConfigureAwait(false);
            return ErrorCode.None;
        }
        catch (StorageException e)
        {
            return e.Error.ToErrorCode();
        }
        catch (ObjectDisposedException)
        {
            return ErrorCode.NotLeaderOrFollower; // the replica closed (moved or deleted) meanwhile
        }
    }
}
