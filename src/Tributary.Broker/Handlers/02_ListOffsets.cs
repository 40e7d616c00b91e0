using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ListOffsets v0-9. v0 (<see cref="OldStyle"/>) answers a list of offsets, as Kafka's first consumers asked. v1+:
/// latest (-1: the high watermark, or for isolation_level 1, v2+, the last stable offset),
/// earliest (-2: the log start offset), max timestamp (-3, v7+: the record with the largest timestamp), earliest
/// local (-4, v8+: the log start offset, since no segments are tiered yet), latest tiered (-5, v9+: none, -1, for the
/// same reason), and any timestamp: the first record whose
/// timestamp is at or after it, found through the time index and exact to the record. ACLs: DESCRIBE on each topic,
/// else its partitions are TOPIC_AUTHORIZATION_FAILED.
/// </summary>
internal sealed class ListOffsetsHandler(BrokerState broker) : ApiHandler<ListOffsetsRequest, ListOffsetsResponse>
{
    public override ApiKey Key => ApiKey.ListOffsets;
    public override short MinVersion => 0;
    public override short MaxVersion => 9;

    private const long Latest = -1, Earliest = -2, MaxTimestamp = -3, EarliestLocal = -4, LatestTiered = -5;

    protected override ValueTask<ListOffsetsResponse?> HandleAsync(RequestContext context, ListOffsetsRequest request)
    {
        var response = new ListOffsetsResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            var allowed = context.AllowsTopic(Security.AclOperation.Describe, topic.Name);
            foreach (var partition in topic.Partitions)
                topicResponse.Partitions.Add(allowed ? Lookup(context.ApiVersion, topic.Name, partition, request.IsolationLevel == 1)
                    : new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = partition.PartitionIndex, ErrorCode = (short)ErrorCode.TopicAuthorizationFailed });
        }
        return new(response);
    }

    private ListOffsetsResponse.ListOffsetsPartitionResponse Lookup(short version, string topic, ListOffsetsRequest.ListOffsetsPartition partition, bool readCommitted)
    {
        var result = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = partition.PartitionIndex, LeaderEpoch = 0 };
        var log = broker.Topics.GetPartition(topic, partition.PartitionIndex);
        if (broker.Topics.IsPartitionOffline(topic, partition.PartitionIndex))
        {
            result.ErrorCode = (short)ErrorCode.KafkaStorageError; // its log directory is offline
            return result;
        }
        if (broker.Topics.IsLedElsewhere(topic, partition.PartitionIndex))
        {
            result.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
            return result;
        }
        if (log is null)
        {
            result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
            return result;
        }
        if (broker.CheckLeaderEpoch(topic, partition.PartitionIndex, partition.CurrentLeaderEpoch) is { } epochError)
        {
            result.ErrorCode = (short)epochError;
            return result;
        }
        result.LeaderEpoch = broker.Topics.Image.Partition(topic, partition.PartitionIndex)?.LeaderEpoch ?? 0;
        var highWatermark = broker.HighWatermark(topic, partition.PartitionIndex, log);
        if (version == 0)
        {
            result.OldStyleOffsets = OldStyle(log, partition.Timestamp, partition.MaxNumOffsets, highWatermark);
            return result;
        }
        var lastStable = broker.LastStableOffset(topic, partition.PartitionIndex, log);
        try
        {
            var found = partition.Timestamp switch
            {
                Latest => new TimestampLookup(readCommitted ? lastStable : highWatermark, -1),
                Earliest => new TimestampLookup(log.LogStartOffset, -1),
                EarliestLocal when version >= 8 => new TimestampLookup(log.LogStartOffset, -1),
                // KIP-1005: the highest offset in remote storage; none is tiered, so none, as Kafka answers without it.
                LatestTiered when version >= 9 => new TimestampLookup(-1, -1),
                MaxTimestamp when version >= 7 => log.FindMaxTimestamp(),
                < 0 => (TimestampLookup?)null,
                var ts => log.FindOffsetByTimestamp(ts),
            };
            if (found is not { } lookup)
            {
                result.ErrorCode = (short)ErrorCode.UnsupportedVersion;
                return result;
            }
            // A timestamp lookup answers only with offsets the asker may fetch: below the last stable offset for
            // read_committed, below the high watermark otherwise (Kafka's lastFetchableOffset).
            if (partition.Timestamp is not (Latest or Earliest or EarliestLocal or LatestTiered) && lookup.Offset >= 0
                && lookup.Offset >= (readCommitted ? lastStable : highWatermark))
            {
                lookup = new TimestampLookup(-1, -1);
            }
            result.Offset = lookup.Offset;
            result.Timestamp = lookup.Timestamp;
            if (lookup.Offset < 0) result.LeaderEpoch = -1;
        }
        catch (StorageException e)
        {
            result.ErrorCode = (short)e.Error.ToErrorCode();
        }
        return result;
    }

    /// <summary>
    /// ListOffsets v0, as Kafka's legacy lookup: the segments' base offsets with, when the log is not empty, the log end
    /// offset after them; latest (-1) starts from the end, earliest (-2) from the first (the log start offset here), a
    /// timestamp from the last segment whose largest timestamp is not after it; up to max_num_offsets offsets from
    /// there back, newest first. None is above the high watermark: a consumer gets the high watermark in their place.
    /// </summary>
    private static List<long> OldStyle(PartitionLog log, long timestamp, int maxNumOffsets, long highWatermark)
    {
        var points = log.SegmentStarts().Select(s => (Offset: s.BaseOffset, Time: s.MaxTimestamp)).ToList();
        if (points.Count > 0) points[0] = (Math.Max(points[0].Offset, log.LogStartOffset), points[0].Time);
        if (log.LogEndOffset > log.LogStartOffset) points.Add((log.LogEndOffset, long.MaxValue));
        var start = timestamp switch
        {
            Latest => points.Count - 1,
            Earliest => Math.Min(0, points.Count - 1),
            _ => points.FindLastIndex(p => p.Time <= timestamp),
        };
        var offsets = new List<long>();
        for (var i = start; i >= 0 && offsets.Count < maxNumOffsets; i--) offsets.Add(points[i].Offset);
        offsets.Sort((a, b) => b.CompareTo(a));
        if (offsets.Count > 0 && offsets[0] > highWatermark)
        {
            offsets.RemoveAll(o => o > highWatermark);
            offsets.Insert(0, highWatermark);
        }
        return offsets;
    }
}
