using Tributary.Broker.Cluster;
using Tributary.Broker.Fetching;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// Fetch v0-17 (v17 adds KRaft's replica directory id, which a broker's fetch leaves unset). Records are served as the stored bytes: whole batches copied from the segment into a pooled buffer
/// that lives until the response is sent; v0-3, which read only message sets, get them down-converted
/// (<see cref="DownConvert"/>). Limits: partition_max_bytes per partition and max_bytes per response, the
/// latter capped by the broker's fetch.max.bytes (so a response stays far below what int32 sizes can carry, and the
/// cap applies before anything is read); only the first non-empty partition may exceed them, by its first batch
/// (KIP-74), so a consumer is never stuck. A partition named more than once is answered once, as Kafka's request
/// map does: at the place it was first named, with the offset and max bytes it was last named with.
/// Long polling: when fewer than min_bytes are ready the fetch waits, without spinning, until a high watermark of one
/// of its partitions advances or max_wait_ms ends. Fetch sessions (KIP-227, v7+): full and incremental requests,
/// with incremental responses carrying only partitions with news. v13+ names topics by id.
/// read_committed (isolation_level 1) reads stop at the last stable offset and carry the aborted transactions that
/// overlap the fetched range, so the client can drop their records; every response reports the LSO.
/// Below v10, a partition of a topic with compression.type=zstd gets UNSUPPORTED_COMPRESSION_TYPE, as Kafka answers.
/// A follower's fetch (replica id set) reads up to the leader's durable end; one outside the ISR of a partition listed in
/// leader.replication.throttled.replicas gets no records while leader.replication.throttled.rate is used up (KIP-73).
/// KIP-392: with a rack-aware replica.selector.class a leader names a v11+ consumer's in-rack replica as its preferred
/// read replica, and a follower serves consumers up to the high watermark its leader reported. Not implemented:
/// diverging epochs.
/// </summary>
internal sealed class FetchHandler(BrokerState broker) : ApiHandler<FetchRequest, FetchResponse>
{
    public override ApiKey Key => ApiKey.Fetch;
    public override short MinVersion => 0;
    public override short MaxVersion => 17;

    private const int FinalEpoch = -1;

    /// <summary>
    /// Records one response may carry whatever fetch.max.bytes says: the int32 frame size must also hold the first
    /// batch's overshoot (KIP-74; a batch is at most a segment) and every partition's header.
    /// </summary>
    private const int MaxResponseRecordBytes = 1 << 30;

    protected override async ValueTask<FetchResponse?> HandleAsync(RequestContext context, FetchRequest request)
    {
        var version = context.ApiVersion;
        var usesTopicIds = version >= 13;
        FetchSession? session = null;
        var incremental = false;
        if (version >= 7)
        {
            if (request.SessionId == 0)
            {
                if (request.SessionEpoch == 0) session = broker.FetchSessions.Create();
                else if (request.SessionEpoch != FinalEpoch) return SessionError(ErrorCode.InvalidFetchSessionEpoch);
            }
            else
            {
                var existing = broker.FetchSessions.Get(request.SessionId);
                if (request.SessionEpoch == FinalEpoch || request.SessionEpoch == 0)
                {
                    broker.FetchSessions.Remove(request.SessionId);
                    if (request.SessionEpoch == 0) session = broker.FetchSessions.Create();
                }
                else if (existing is null) return SessionError(ErrorCode.FetchSessionIdNotFound);
                else if (existing.NextEpoch != request.SessionEpoch) return SessionError(ErrorCode.InvalidFetchSessionEpoch);
                else
                {
                    session = existing;
                    incremental = true;
                }
            }
        }

        if (session is null)
            return await FetchAsync(context, request, Requested(request, usesTopicIds), null, incremental: false).ConfigureAwait(false);

        await session.Gate.WaitAsync(context.Cancellation).ConfigureAwait(false);
        try
        {
            if (incremental && session.NextEpoch != request.SessionEpoch) return SessionError(ErrorCode.InvalidFetchSessionEpoch);
            UpdateSession(session, request, usesTopicIds, incremental);
            // A new session expects epoch 1 next; each incremental request moves it on by one.
            if (incremental) session.NextEpoch = session.NextEpoch == int.MaxValue ? 1 : session.NextEpoch + 1;
            return await FetchAsync(context, request, session.Partitions.Values.ToList(), session, incremental).ConfigureAwait(false);
        }
        finally
        {
            session.Gate.Release();
        }
    }

    private static FetchResponse SessionError(ErrorCode error) => new() { ErrorCode = (short)error, SessionId = 0 };

    /// <summary>The distinct partitions of a sessionless request, in the order they were first named.</summary>
    private List<SessionPartition> Requested(FetchRequest request, bool usesTopicIds)
    {
        var list = new List<SessionPartition>();
        // Built only once a second partition is named: the usual single-partition fetch pays nothing for it.
        Dictionary<(Guid, string, int), SessionPartition>? seen = null;
        SessionPartition? first = null;
        foreach (var topic in request.Topics)
        {
            var (name, id) = Resolve(topic.Topic, topic.TopicId, usesTopicIds);
            foreach (var p in topic.Partitions)
            {
                SessionPartition? partition;
                if (first is null)
                {
                    partition = first = new SessionPartition(name, id, p.Partition);
                    list.Add(partition);
                }
                else
                {
                    if (seen is null)
                    {
                        seen = [];
                        seen[Key(first.TopicId, first.Topic, first.Partition)] = first;
                    }
                    if (!seen.TryGetValue(Key(id, name, p.Partition), out partition))
                    {
                        seen[Key(id, name, p.Partition)] = partition = new SessionPartition(name, id, p.Partition);
                        list.Add(partition);
                    }
                }
                partition.FetchOffset = p.FetchOffset;
                partition.MaxBytes = p.PartitionMaxBytes;
                partition.CurrentLeaderEpoch = p.CurrentLeaderEpoch;
            }
        }
        return list;

        // v13+ names topics by id alone (an unknown id has no name); earlier versions by name alone.
        (Guid, string, int) Key(Guid id, string name, int partition) => usesTopicIds ? (id, "", partition) : (Guid.Empty, name, partition);
    }

    /// <summary>A topic named by id that we do not know keeps its id and an empty name; its partitions answer UNKNOWN_TOPIC_ID.</summary>
    private (string Name, Guid Id) Resolve(string name, Guid id, bool usesTopicIds)
    {
        if (usesTopicIds) return (broker.Topics.Get(id)?.Name ?? "", id);
        return (name, broker.Topics.Get(name)?.Id ?? Guid.Empty);
    }

    private void UpdateSession(FetchSession session, FetchRequest request, bool usesTopicIds, bool incremental)
    {
        if (!incremental) session.Partitions.Clear();
        foreach (var topic in request.Topics)
        {
            var (name, id) = Resolve(topic.Topic, topic.TopicId, usesTopicIds);
            foreach (var p in topic.Partitions)
            {
                var key = new FetchPartitionKey(usesTopicIds ? id.ToString() : name, p.Partition);
                if (!session.Partitions.TryGetValue(key, out var state))
                    session.Partitions[key] = state = new SessionPartition(name, id, p.Partition);
                state.FetchOffset = p.FetchOffset;
                state.MaxBytes = p.PartitionMaxBytes;
                state.CurrentLeaderEpoch = p.CurrentLeaderEpoch;
            }
        }
        foreach (var forgotten in request.ForgottenTopicsData)
        {
            var (name, id) = Resolve(forgotten.Topic, forgotten.TopicId, usesTopicIds);
            foreach (var p in forgotten.Partitions)
                session.Partitions.Remove(new FetchPartitionKey(usesTopicIds ? id.ToString() : name, p));
        }
    }

    private async ValueTask<FetchResponse> FetchAsync(RequestContext context, FetchRequest request, List<SessionPartition> partitions, FetchSession? session, bool incremental)
    {
        var deadline = broker.Time.GetTimestamp() + (long)(Math.Max(0, request.MaxWaitMs) * (broker.Time.TimestampFrequency / 1000.0));
        var waited = TimeSpan.Zero;
        while (true)
        {
            using var waiter = new HighWatermarkWaiter(broker.Replicas);
            var reads = ReadAll(context, request, partitions, waiter, out var responseFull);
            var bytes = reads.Sum(r => (long)r.Slice.Length);
            var hasError = reads.Any(r => r.Error != ErrorCode.None || r.PreferredReadReplica >= 0);
            var remaining = broker.Time.GetElapsedTime(broker.Time.GetTimestamp(), deadline);
            // A response that is as full as the byte limits let it be satisfies any min_bytes (Kafka counts the bytes
            // available, not the bytes that fit).
            if (bytes >= Math.Max(1, request.MinBytes) || responseFull || hasError || remaining <= TimeSpan.Zero || context.Cancellation.IsCancellationRequested)
            {
                if (waited > TimeSpan.Zero) broker.Metrics.FetchWaited(waited);
                return Respond(context, request, reads, session, incremental);
            }
            foreach (var r in reads) r.Slice.Dispose();
            var waitStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                await waiter.Advanced.WaitAsync(remaining, broker.Time, context.Cancellation).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
            catch (OperationCanceledException)
            {
            }
            waited += System.Diagnostics.Stopwatch.GetElapsedTime(waitStarted);
        }
    }

    private sealed class PartitionRead(SessionPartition partition)
    {
        public SessionPartition Partition { get; } = partition;
        public ErrorCode Error { get; set; }
        public FetchSlice Slice { get; set; }
        public long HighWatermark { get; set; } = -1;
        public long LogStartOffset { get; set; } = -1;
        public long LastStableOffset { get; set; } = -1;
        public List<FetchResponse.AbortedTransaction>? Aborted { get; set; }
        public int PreferredReadReplica { get; set; } = -1;
    }

    /// <summary>KIP-392 on the leader: the in-sync replica in the consumer's rack it should read from; -1 for this broker.</summary>
    private int PreferredReadReplica(string topic, int partition, string? rackId)
    {
        if (string.IsNullOrEmpty(rackId) || !_rackAware || broker.Replicas?.IsReplicatedLeader(topic, partition) != true) return -1;
        var image = broker.Topics.Image;
        return image.Partition(topic, partition) is { } state ? Replication.RackAwareReplicaSelector.Select(state, rackId, image) : -1;
    }

    private readonly bool _rackAware = broker.Settings.Get("replica.selector.class") == Replication.RackAwareReplicaSelector.ClassName;

    /// <summary>
    /// Reads every partition within the byte limits. <paramref name="responseFull"/> tells whether the response budget
    /// (not a partition's own limit) left readable data behind.
    /// </summary>
    private List<PartitionRead> ReadAll(RequestContext context, FetchRequest request, List<SessionPartition> partitions, HighWatermarkWaiter waiter, out bool responseFull)
    {
        var version = context.ApiVersion;
        // A follower's fetch needs CLUSTER_ACTION on the cluster, a consumer's READ on each topic; refused partitions
        // are TOPIC_AUTHORIZATION_FAILED either way, as Kafka answers (before it looks whether the topic exists).
        var replicaId = ReplicaIdOf(request, version);
        var followerAllowed = replicaId < 0 || context.AllowsCluster(Security.AclOperation.ClusterAction);
        responseFull = false;
        var responseBudget = Math.Min(Math.Min(request.MaxBytes <= 0 ? int.MaxValue : request.MaxBytes, broker.Settings.FetchMaxBytes), MaxResponseRecordBytes);
        var reads = new List<PartitionRead>(partitions.Count);
        var total = 0L;
        foreach (var partition in partitions)
        {
            var read = new PartitionRead(partition);
            reads.Add(read);
            if (partition.Topic.Length > 0 && (replicaId >= 0 ? !followerAllowed : !context.AllowsTopic(Security.AclOperation.Read, partition.Topic)))
            {
                read.Error = ErrorCode.TopicAuthorizationFailed;
                continue;
            }
            TopicInfo? topic = partition.Topic.Length == 0 ? null : broker.Topics.Get(partition.Topic);
            var log = topic is null ? null : broker.Topics.GetPartition(topic.Name, partition.Partition);
            if (topic is not null && broker.Topics.IsPartitionOffline(topic.Name, partition.Partition))
            {
                read.Error = ErrorCode.KafkaStorageError; // its log directory is offline
                continue;
            }
            // KIP-392: a consumer (v11+, where it can be sent to a replica) may read from a follower, up to the high
            // watermark the leader last reported to it.
            var followerHighWatermark = topic is not null && log is not null && replicaId < 0 && version >= 11 && broker.Replicas is { } replicas
                ? replicas.FollowerHighWatermark(topic.Name, partition.Partition, log) : -1;
            if (topic is not null && followerHighWatermark < 0 && broker.Topics.IsLedElsewhere(topic.Name, partition.Partition))
            {
                read.Error = ErrorCode.NotLeaderOrFollower;
                continue;
            }
            if (topic is not null && broker.CheckLeaderEpoch(topic.Name, partition.Partition, partition.CurrentLeaderEpoch) is { } epochError)
            {
                read.Error = epochError;
                continue;
            }
            if (log is null)
            {
                read.Error = version >= 13 && topic is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition;
                continue;
            }
            if (version < 10 && log.Config.Compression == Protocol.Records.CompressionCodec.Zstd)
            {
                // As Kafka: a topic whose compression.type is zstd is not served below Fetch v10 (before KIP-110's
                // clients); zstd batches a producer chose on a "producer" topic are served as stored.
                read.Error = ErrorCode.UnsupportedCompressionType;
                continue;
            }
            var servedAsFollower = followerHighWatermark >= 0;
            waiter.Watch(log, servedAsFollower || broker.Replicas?.IsReplicatedLeader(partition.Topic, partition.Partition) == true);
            // A follower's fetch (replica id set) tells the leader its log end and reads everything durable here; a
            // consumer reads up to the high watermark, records every in-sync replica holds.
            if (replicaId >= 0) broker.Replicas?.OnFollowerFetch(partition.Topic, partition.Partition, replicaId, partition.FetchOffset);
            read.HighWatermark = servedAsFollower ? followerHighWatermark : broker.HighWatermark(partition.Topic, partition.Partition, log);
            read.LogStartOffset = log.LogStartOffset;
            var readCommitted = request.IsolationLevel == 1;
            read.LastStableOffset = servedAsFollower ? Math.Min(log.LastStableOffset, followerHighWatermark)
                : broker.LastStableOffset(partition.Topic, partition.Partition, log);
            if (!servedAsFollower && replicaId < 0 && version >= 11 && PreferredReadReplica(topic!.Name, partition.Partition, request.RackId) is var preferred && preferred >= 0)
            {
                // KIP-392: the leader names the consumer's replica and sends no records; the consumer fetches there next.
                read.PreferredReadReplica = preferred;
                continue;
            }
            var budget = (int)Math.Min(partition.MaxBytes, responseBudget - total);
            var readLimit = replicaId >= 0 ? log.HighWatermark : read.HighWatermark;
            var readableEnd = readCommitted ? read.LastStableOffset : readLimit;
            if (budget <= 0 && total > 0)
            {
                responseFull |= partition.FetchOffset < readableEnd;
                continue;
            }
            // KIP-73: an out-of-sync follower of a throttled partition gets no records while the leader quota is used up.
            var throttle = replicaId >= 0 ? broker.Replicas?.Throttle : null;
            var throttled = throttle is not null && throttle.CountsAsLeader(partition.Topic, partition.Partition, replicaId, broker.Topics.Image);
            if (throttled && throttle!.Leader.IsExceeded()) continue;
            // Only the first non-empty partition may exceed the budget (by its first batch); later ones stop short of it.
            var minOneBatch = total == 0;
            try
            {
                FetchSlice slice;
                if (readCommitted)
                {
                    slice = log.ReadCommitted(partition.FetchOffset, Math.Max(budget, 1), read.LastStableOffset, out var aborted, minOneBatch);
                    read.Aborted = [.. aborted.Select(a => new FetchResponse.AbortedTransaction { ProducerId = a.ProducerId, FirstOffset = a.FirstOffset })];
                }
                else
                {
                    slice = log.Read(partition.FetchOffset, Math.Max(budget, 1), maxOffsetExclusive: readLimit, minOneBatch: minOneBatch);
                }
                read.Slice = slice;
                read.LogStartOffset = slice.LogStartOffset;
                if (servedAsFollower) broker.Replicas!.CountFollowerFetch(slice.Length);
                total += slice.Length;
                if (throttled) throttle!.Leader.Record(slice.Length);
                responseFull |= budget < partition.MaxBytes && (slice.IsEmpty ? partition.FetchOffset : slice.NextOffset) < readableEnd;
            }
            catch (StorageException e)
            {
                read.Error = e.Error.ToErrorCode();
            }
        }
        return reads;
    }

    /// <summary>KIP-951: the current leader and epoch of a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.</summary>
    private FetchResponse.LeaderIdAndEpoch? LeaderHint(PartitionRead read, ref MetadataImage? image, ref HashSet<int>? leaders)
    {
        if (read.Error is not (ErrorCode.NotLeaderOrFollower or ErrorCode.FencedLeaderEpoch)) return null;
        image ??= broker.Topics.Image;
        if (image.Partition(read.Partition.Topic, read.Partition.Partition) is not { Leader: >= 0 } state) return null;
        (leaders ??= []).Add(state.Leader);
        return new FetchResponse.LeaderIdAndEpoch { LeaderId = state.Leader, LeaderEpoch = state.LeaderEpoch };
    }

    /// <summary>The fetching replica's id: a broker's follower sets it (v15+ in replica_state), a consumer leaves -1.</summary>
    private static int ReplicaIdOf(FetchRequest request, short version) =>
        version >= 15 ? request.ReplicaState?.ReplicaId ?? -1 : request.ReplicaId;

    private FetchResponse Respond(RequestContext context, FetchRequest request, List<PartitionRead> reads, FetchSession? session, bool incremental)
    {
        var (withheld, throttle) = Throttle(context, request, reads, session, incremental);
        if (withheld is not null) return withheld;
        var response = new FetchResponse { SessionId = session?.Id ?? 0, ThrottleTimeMs = throttle };
        // v0-3 read message sets: v0-1 magic 0, v2-3 magic 1; what is converted shares one budget of fetch.max.bytes.
        var legacyMagic = context.ApiVersion switch { < 2 => (byte)0, < 4 => (byte)1, _ => (byte)2 };
        var legacyBudget = (long)Math.Min(broker.Settings.FetchMaxBytes, MaxResponseRecordBytes);
        MetadataImage? image = null;
        HashSet<int>? leaders = null;
        FetchResponse.FetchableTopicResponse? current = null;
        foreach (var read in reads)
        {
            var p = read.Partition;
            if (incremental)
            {
                var news = read.Error != ErrorCode.None || read.Slice.Length > 0 || read.PreferredReadReplica >= 0
                    || read.HighWatermark != p.LastHighWatermark || read.LogStartOffset != p.LastLogStartOffset;
                if (!news)
                {
                    read.Slice.Dispose();
                    continue;
                }
            }
            p.LastHighWatermark = read.HighWatermark;
            p.LastLogStartOffset = read.LogStartOffset;
            if (current is null || current.Topic != p.Topic || current.TopicId != p.TopicId)
            {
                current = new FetchResponse.FetchableTopicResponse { Topic = p.Topic, TopicId = p.TopicId };
                response.Responses.Add(current);
            }
            var slice = read.Slice;
            var records = slice.IsEmpty ? ReadOnlyMemory<byte>.Empty : slice.Memory;
            if (legacyMagic < 2 && !slice.IsEmpty)
            {
                (records, read.Error) = DownConvert(slice, legacyMagic, p.MaxBytes, ref legacyBudget, read.Error);
                slice.Dispose();
            }
            else if (!slice.IsEmpty) context.KeepUntilSent(slice);
            if (p.Topic is { } topicName) broker.Metrics.Fetched(topicName, slice.Length);
            if (read.Error != ErrorCode.None) broker.Metrics.Error((short)ApiKey.Fetch, (short)read.Error);
            current.Partitions.Add(new FetchResponse.PartitionData
            {
                PartitionIndex = p.Partition,
                ErrorCode = (short)read.Error,
                HighWatermark = read.HighWatermark,
                LastStableOffset = read.LastStableOffset >= 0 ? read.LastStableOffset : read.HighWatermark,
                LogStartOffset = read.LogStartOffset,
                AbortedTransactions = request.IsolationLevel == 1 ? read.Aborted ?? [] : null,
                PreferredReadReplica = read.PreferredReadReplica,
                Records = records,
                CurrentLeader = LeaderHint(read, ref image, ref leaders),
            });
        }
        // KIP-951: the endpoints of the leaders named above, so the client reconnects without a metadata round trip.
        if (leaders is not null)
            foreach (var id in leaders)
                if (image!.Brokers.TryGetValue(id, out var b) && b.EndpointFor(context.Listener) is var (host, port))
                    response.NodeEndpoints.Add(new FetchResponse.NodeEndpoint { NodeId = b.NodeId, Host = host, Port = port, Rack = b.Rack });
        return response;
    }

    /// <summary>
    /// The records of a v0-3 fetch as messages of <paramref name="magic"/> (Kafka's down-conversion), uncompressed, at most
    /// the partition's max bytes (the first message always) and what is left of <paramref name="budget"/>, so an old
    /// consumer's fetch of compressed data cannot make the broker hold more than fetch.max.bytes of converted records.
    /// </summary>
    private static (ReadOnlyMemory<byte>, ErrorCode) DownConvert(FetchSlice slice, byte magic, int partitionMaxBytes, ref long budget, ErrorCode error)
    {
        if (budget <= 0) return (ReadOnlyMemory<byte>.Empty, error);
        try
        {
            var limit = (int)Math.Min(budget, partitionMaxBytes <= 0 ? int.MaxValue : partitionMaxBytes);
            var converted = LegacyMessageSet.FromRecordBatches(slice.Memory, magic, limit, CompressionCodecs.DefaultMaxDecompressedBytes);
            budget -= converted.Length;
            return (converted, error);
        }
        catch (InvalidRecordException)
        {
            return (ReadOnlyMemory<byte>.Empty, ErrorCode.CorruptMessage);
        }
    }

    /// <summary>
    /// consumer_byte_rate, for consumers (followers replicate unthrottled by client quotas, as in Kafka). A response that
    /// would exceed the quota is replaced, as Kafka replaces it, by an empty one carrying the throttle time, and the
    /// connection is not read for that long (KIP-219): the records stay where they are and nothing of the session moves,
    /// so the next fetch gets them. A throttled full request creates no session (session id 0), as in Kafka. Withheld is
    /// null when the response may go out, with the throttle time (nonzero when it takes the budget below zero).
    /// </summary>
    private (FetchResponse? Withheld, int ThrottleMs) Throttle(RequestContext context, FetchRequest request, List<PartitionRead> reads, FetchSession? session, bool incremental)
    {
        if (ReplicaIdOf(request, context.ApiVersion) >= 0) return (null, 0);
        var bytes = 0L;
        foreach (var read in reads) bytes += read.Slice.Length;
        var throttle = broker.Quotas.RecordFetch(context.Principal, context.ClientId, bytes, out var withhold);
        if (throttle <= 0) return (null, 0);
        context.ThrottleMs = Math.Max(context.ThrottleMs, throttle);
        if (!withhold) return (null, throttle);
        foreach (var read in reads) read.Slice.Dispose();
        if (session is not null && !incremental) broker.FetchSessions.Remove(session.Id);
        return (new FetchResponse { ThrottleTimeMs = throttle, SessionId = incremental ? session!.Id : 0 }, throttle);
    }
}
