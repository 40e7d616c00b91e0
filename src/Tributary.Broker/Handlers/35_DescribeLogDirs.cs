using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeLogDirs v0-4: the one log directory, its total and usable bytes (v4, from the file system), and per partition
/// its size on disk. Offset lag is 0 and there are no future (moving) replicas: there is one broker and one directory.
///
/// Tributary extension: in flexible versions (v2+) each partition also carries tagged fields that Kafka clients skip
/// (KIP-482 lets any reader ignore unknown tags), for <c>tributary topic describe</c>:
/// 10000 log start offset (int64), 10001 log end offset (int64), 10002 segment count (int32),
/// 10003 dirty ratio (float64; -1 when the topic is not compacted), 10004 last clean time (int64 ms; -1 never).
/// No Kafka API carries these (Kafka shows them as JMX metrics), and tags keep the response a valid DescribeLogDirs.
/// </summary>
internal sealed class DescribeLogDirsHandler(BrokerState broker) : ApiHandler<DescribeLogDirsRequest, DescribeLogDirsHandler.Response>
{
    private const int LogStartOffsetTag = DescribeLogDirsTags.LogStartOffset;
    private const int LogEndOffsetTag = DescribeLogDirsTags.LogEndOffset;
    private const int SegmentCountTag = DescribeLogDirsTags.SegmentCount;
    private const int DirtyRatioTag = DescribeLogDirsTags.DirtyRatio;
    private const int LastCleanTimeTag = DescribeLogDirsTags.LastCleanTime;

    public override ApiKey Key => ApiKey.DescribeLogDirs;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override ValueTask<Response?> HandleAsync(RequestContext context, DescribeLogDirsRequest request)
    {
        var wanted = request.Topics?.ToDictionary(t => t.Topic, t => t.Partitions.ToHashSet());
        var topics = new List<(string Name, List<(PartitionLog Log, int Index)> Partitions)>();
        string? dataDir = null;
        foreach (var topic in broker.Topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            HashSet<int>? partitions = null;
            if (wanted is not null && !wanted.TryGetValue(topic.Name, out partitions))
            {
                continue;
            }

            var logs = new List<(PartitionLog, int)>();
            for (int p = 0; p < topic.PartitionCount; p++)
            {
                if ((partitions is null || partitions.Contains(p)) && broker.Topics.GetPartition(topic.Name, p) is { } log)
                {
                    logs.Add((log, p));
                    dataDir ??= Path.GetDirectoryName(log.Directory);
                }
            }

            if (logs.Count > 0)
            {
                topics.Add((topic.Name, logs));
            }
        }

        long total = -1, usable = -1;
        if (dataDir is not null)
        {
            try
            {
                var drive = new DriveInfo(dataDir);
                (total, usable) = (drive.TotalSize, drive.AvailableFreeSpace);
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
            }
        }

        return new(new Response { LogDir = dataDir ?? "", TotalBytes = total, UsableBytes = usable, Topics = topics });
    }

    /// <summary>DescribeLogDirsResponse with one directory, written by hand for the extension tags.</summary>
    public sealed class Response : IKafkaResponse
    {
        public short ApiKey => DescribeLogDirsResponse.ApiKeyValue;
        public required string LogDir { get; init; }
        public long TotalBytes { get; init; } = -1;
        public long UsableBytes { get; init; } = -1;
        public required List<(string Name, List<(PartitionLog Log, int Index)> Partitions)> Topics { get; init; }

        public void Read(ref KafkaReader reader, short version) => throw new NotSupportedException("A broker only writes this response.");

        public void Write(KafkaWriter writer, short version)
        {
            bool flexible = DescribeLogDirsResponse.IsFlexible(version);
            writer.WriteInt32(0); // throttle
            if (version >= 3)
            {
                writer.WriteInt16(0);
            }

            writer.WriteArrayLength(1, flexible);
            writer.WriteInt16(0);
            writer.WriteNullableString(LogDir, flexible);
            writer.WriteArrayLength(Topics.Count, flexible);
            foreach (var (name, partitions) in Topics)
            {
                writer.WriteNullableString(name, flexible);
                writer.WriteArrayLength(partitions.Count, flexible);
                foreach (var (log, index) in partitions)
                {
                    writer.WriteInt32(index);
                    writer.WriteInt64(log.SizeInBytes);
                    writer.WriteInt64(0);
                    writer.WriteBool(false);
                    if (flexible)
                    {
                        WriteDetails(writer, log);
                    }
                }

                if (flexible)
                {
                    writer.WriteUnsignedVarInt(0);
                }
            }

            if (version >= 4)
            {
                writer.WriteInt64(TotalBytes);
                writer.WriteInt64(UsableBytes);
            }

            if (flexible)
            {
                writer.WriteUnsignedVarInt(0); // result tags
                writer.WriteUnsignedVarInt(0); // response tags
            }
        }

        private static void WriteDetails(KafkaWriter writer, PartitionLog log)
        {
            var cleaner = log.Config.CleanupCompact ? log.GetCleanerStatus() : (CleanerStatus?)null;
            writer.WriteUnsignedVarInt(5);
            writer.WriteUnsignedVarInt(LogStartOffsetTag);
            writer.WriteUnsignedVarInt(8);
            writer.WriteInt64(log.LogStartOffset);
            writer.WriteUnsignedVarInt(LogEndOffsetTag);
            writer.WriteUnsignedVarInt(8);
            writer.WriteInt64(log.HighWatermark);
            writer.WriteUnsignedVarInt(SegmentCountTag);
            writer.WriteUnsignedVarInt(4);
            writer.WriteInt32(log.SegmentCount);
            writer.WriteUnsignedVarInt(DirtyRatioTag);
            writer.WriteUnsignedVarInt(8);
            writer.WriteFloat64(cleaner?.DirtyRatio ?? -1);
            writer.WriteUnsignedVarInt(LastCleanTimeTag);
            writer.WriteUnsignedVarInt(8);
            writer.WriteInt64(cleaner?.LastCleanTimeMs ?? -1);
        }
    }
}

/// <summary>The tagged fields Tributary adds to each DescribeLogDirs partition (see <c>DescribeLogDirsHandler</c>), for clients that read them.</summary>
public static class DescribeLogDirsTags
{
    public const int LogStartOffset = 10000;
    public const int LogEndOffset = 10001;
    public const int SegmentCount = 10002;
    public const int DirtyRatio = 10003;
    public const int LastCleanTime = 10004;
}
