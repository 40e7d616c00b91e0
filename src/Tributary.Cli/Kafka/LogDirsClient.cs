using System.Buffers.Binary;
using System.Net.Sockets;
using Tributary.Broker.Handlers;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Kafka;

/// <summary>Per-partition storage facts from DescribeLogDirs; the fields after SizeBytes come from Tributary's extension tags (null from other brokers).</summary>
public sealed record PartitionLogInfo(int Partition, long SizeBytes, long? LogStartOffset, long? LogEndOffset, int? SegmentCount, double? DirtyRatio, long? LastCleanTimeMs);

/// <summary>
/// DescribeLogDirs (API 35, v4) over a plain socket: librdkafka has no admin call for it. One request to one broker;
/// partition entries are read with the extension tags <see cref="DescribeLogDirsTags"/> documents, and any other tag
/// is skipped, so against Apache Kafka this still yields the sizes.
/// </summary>
public static class LogDirsClient
{
    private const short Version = 4;

    public static async Task<Dictionary<int, PartitionLogInfo>> DescribeAsync(string host, int port, string topic, IEnumerable<int> partitions, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(host, port, cts.Token);
        var stream = client.GetStream();

        using var writer = new KafkaWriter();
        int sizeAt = writer.ReserveInt32();
        writer.WriteInt16(DescribeLogDirsResponse.ApiKeyValue);
        writer.WriteInt16(Version);
        writer.WriteInt32(1);
        writer.WriteNullableString("tributary-cli", compact: false);
        writer.WriteUnsignedVarInt(0);
        new DescribeLogDirsRequest { Topics = [new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = topic, Partitions = [.. partitions] }] }.Write(writer, Version);
        writer.PatchInt32(sizeAt, writer.WrittenSpan.Length - 4);
        await stream.WriteAsync(writer.WrittenMemory, cts.Token);

        var sizeBytes = new byte[4];
        await stream.ReadExactlyAsync(sizeBytes, cts.Token);
        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBytes)];
        await stream.ReadExactlyAsync(frame, cts.Token);
        return Parse(frame, topic);
    }

    private static Dictionary<int, PartitionLogInfo> Parse(byte[] frame, string topic)
    {
        var reader = new KafkaReader(frame);
        reader.ReadInt32(); // correlation id
        SkipTags(ref reader);
        reader.ReadInt32(); // throttle
        short error = reader.ReadInt16();
        if (error != 0)
        {
            throw new InvalidOperationException($"DescribeLogDirs failed with error code {error}");
        }

        var result = new Dictionary<int, PartitionLogInfo>();
        int dirs = reader.ReadArrayLength(true);
        for (int d = 0; d < dirs; d++)
        {
            reader.ReadInt16();
            reader.ReadNullableString(true);
            int topics = reader.ReadArrayLength(true);
            for (int t = 0; t < topics; t++)
            {
                string? name = reader.ReadNullableString(true);
                int count = reader.ReadArrayLength(true);
                for (int p = 0; p < count; p++)
                {
                    int index = reader.ReadInt32();
                    long size = reader.ReadInt64();
                    reader.ReadInt64();
                    reader.ReadBool();
                    long? start = null, end = null, lastClean = null;
                    int? segments = null;
                    double? dirty = null;
                    uint tags = reader.ReadUnsignedVarInt();
                    for (uint i = 0; i < tags; i++)
                    {
                        uint tag = reader.ReadUnsignedVarInt();
                        switch (tag)
                        {
                            case DescribeLogDirsTags.LogStartOffset: reader.ReadUnsignedVarInt(); start = reader.ReadInt64(); break;
                            case DescribeLogDirsTags.LogEndOffset: reader.ReadUnsignedVarInt(); end = reader.ReadInt64(); break;
                            case DescribeLogDirsTags.SegmentCount: reader.ReadUnsignedVarInt(); segments = reader.ReadInt32(); break;
                            case DescribeLogDirsTags.DirtyRatio: reader.ReadUnsignedVarInt(); dirty = reader.ReadFloat64(); break;
                            case DescribeLogDirsTags.LastCleanTime: reader.ReadUnsignedVarInt(); lastClean = reader.ReadInt64(); break;
                            default: reader.SkipTaggedField(); break;
                        }
                    }

                    if (name == topic)
                    {
                        result[index] = new PartitionLogInfo(index, size, start, end, segments, dirty is < 0 ? null : dirty, lastClean);
                    }
                }

                SkipTags(ref reader);
            }

            reader.ReadInt64();
            reader.ReadInt64();
            SkipTags(ref reader);
        }

        return result;
    }

    private static void SkipTags(ref KafkaReader reader)
    {
        uint tags = reader.ReadUnsignedVarInt();
        for (uint i = 0; i < tags; i++)
        {
            reader.ReadUnsignedVarInt();
            reader.SkipTaggedField();
        }
    }
}
