using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeLogDirs v0-4: every log directory (log.dirs), its total and usable bytes (v4, from the file system), and per
/// partition its size on disk; an offline directory (an I/O failure) with KAFKA_STORAGE_ERROR and no partitions, as Kafka.
/// Offset lag is 0 and there are no future (moving) replicas: there is one broker.
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
        // ACLs: DESCRIBE on the cluster, else no directory and (v3+) CLUSTER_AUTHORIZATION_FAILED.
        if (!context.AllowsCluster(AclOperation.Describe)) return new(new Response { Dirs = [], ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed });
        var wanted = request.Topics?.ToDictionary(t => t.Topic, t => t.Partitions.ToHashSet());
        var byDir = broker.Topics.Logs.Directories.ToDictionary(d => d, _ => new List<(string Name, List<(PartitionLog Log, int Index)> Partitions)>());
        foreach (var topic in broker.Topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            HashSet<int>? partitions = null;
            if (wanted is not null && !wanted.TryGetValue(topic.Name, out partitions))
            {
                continue;
            }

            for (int p = 0; p < topic.PartitionCount; p++)
            {
                if ((partitions is null || partitions.Contains(p)) && broker.Topics.GetPartition(topic.Name, p) is { LogDirectory: { IsOffline: false } dir } log
                    && byDir.TryGetValue(dir, out var topics))
                {
                    if (topics.Count == 0 || topics[^1].Name != topic.Name)
                    {
                        topics.Add((topic.Name, []));
                    }

                    topics[^1].Partitions.Add((log, p));
                }
            }
        }

        var results = new List<DirResult>();
        foreach (var (dir, topics) in byDir)
        {
            if (dir.IsOffline)
            {
                // As Kafka: an offline directory is listed with KAFKA_STORAGE_ERROR and nothing else.
                results.Add(new DirResult(dir.Path, (short)ErrorCode.KafkaStorageError, -1, -1, []));
                continue;
            }

            long total = -1, usable = -1;
            try
            {
                var drive = new DriveInfo(dir.Path);
                (total, usable) = (drive.TotalSize, drive.AvailableFreeSpace);
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
            }

            results.Add(new DirResult(dir.Path, 0, total, usable, topics));
        }

        return new(new Response { Dirs = results });
    }

    /// <summary>One log directory of the response.</summary>
    public sealed record DirResult(string LogDir, short ErrorCode, long TotalBytes, long UsableBytes, List<(string Name, List<(PartitionLog Log, int Index)> Partitions)> Topics);

    /// <summary>DescribeLogDirsResponse, one result per log directory, written by hand for the extension tags.</summary>
    public sealed class Response : IKafkaResponse
    {
        public short ApiKey => DescribeLogDirsResponse.ApiKeyValue;
        public required List<DirResult> Dirs { get; init; }

        /// <summary>The top-level error (v3+).</summary>
        public short ErrorCode { get; init; }

        public void Read(ref KafkaReader reader, short version) => throw new NotSupportedException("A broker only writes this response.");

        public void Write(KafkaWriter writer, short version)
        {
            bool flexible = DescribeLogDirsResponse.IsFlexible(version);
            writer.WriteInt32(0); // throttle
            if (version >= 3)
            {
                writer.WriteInt16(ErrorCode);
            }

            writer.WriteArrayLength(Dirs.Count, flexible);
            foreach (var dir in Dirs)
            {
                writer.WriteInt16(dir.ErrorCode);
                writer.WriteNullableString(dir.LogDir, flexible);
                writer.WriteArrayLength(dir.Topics.Count, flexible);
                foreach (var (name, partitions) in dir.Topics)
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
                    writer.WriteInt64(dir.TotalBytes);
                    writer.WriteInt64(dir.UsableBytes);
                }

                if (flexible)
                {
                    writer.WriteUnsignedVarInt(0); // result tags
                }
            }

            if (flexible)
            {
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
