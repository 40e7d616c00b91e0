using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

public sealed class LogBehaviourTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task OneMebibyteRecordsRoundTrip()
    {
        await broker.CreateTopicAsync("big-records", configs: new() { ["max.message.bytes"] = "5242880" });
        var payloads = Enumerable.Range(0, 4).Select(i => Enumerable.Range(0, 1 << 20).Select(b => (byte)(b * 31 + i)).ToArray()).ToList();
        using (var producer = broker.Producer(c => c.MessageMaxBytes = 5 * 1024 * 1024))
        {
            foreach (var p in payloads)
            {
                var report = await producer.ProduceAsync("big-records", new Message<byte[]?, byte[]?> { Value = p });
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
            }
        }
        var records = broker.ReadAll("big-records", 1, payloads.Count);
        for (var i = 0; i < payloads.Count; i++) Assert.Equal(payloads[i], records[i].Message.Value);
    }

    [Fact]
    public async Task ManyPartitionsEachKeepTheirOwnDenseOffsets()
    {
        const int partitions = 200;
        await broker.CreateTopicAsync("wide", partitions);
        using (var producer = broker.Producer())
        {
            for (var i = 0; i < partitions * 5; i++)
                producer.Produce(new TopicPartition("wide", i % partitions), new Message<byte[]?, byte[]?> { Value = Bytes(i.ToString()) });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        var records = broker.ReadAll("wide", partitions, partitions * 5);
        foreach (var group in records.GroupBy(r => r.Partition.Value))
        {
            Assert.Equal(new long[] { 0, 1, 2, 3, 4 }, group.Select(r => r.Offset.Value).Order());
            Assert.All(group, r => Assert.Equal(group.Key, int.Parse(Encoding.UTF8.GetString(r.Message.Value!)) % partitions));
        }
    }

    [Theory]
    [InlineData(Acks.None)]
    [InlineData(Acks.Leader)]
    [InlineData(Acks.All)]
    public async Task EveryAcksSettingStoresTheRecords(Acks acks)
    {
        var topic = "acks-" + acks.ToString().ToLowerInvariant();
        await broker.CreateTopicAsync(topic);
        using (var producer = broker.Producer(c => c.Acks = acks))
        {
            for (var i = 0; i < 500; i++) producer.Produce(topic, new Message<byte[]?, byte[]?> { Value = Bytes("v" + i) });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        var records = broker.ReadAll(topic, 1, 500);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => "v" + i), records.Select(r => Encoding.UTF8.GetString(r.Message.Value!)));
    }

    [Fact]
    public async Task OffsetsForTimesFindsTheFirstRecordAtOrAfterTheTimestamp()
    {
        await broker.CreateTopicAsync("by-time");
        var baseTime = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        using (var producer = broker.Producer(c => c.LingerMs = 50))
        {
            // Timestamps 0, 10, 20, ... seconds: many records per batch, so the lookup must look inside batches.
            for (var i = 0; i < 300; i++)
            {
                producer.Produce("by-time", new Message<byte[]?, byte[]?>
                {
                    Value = Bytes("r" + i),
                    Timestamp = new Timestamp(baseTime.AddSeconds(i * 10)),
                });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        using var consumer = broker.Consumer();
        foreach (var (secondsAfter, expected) in new[] { (0, 0L), (5, 1L), (10, 1L), (1234, 124L), (2990, 299L), (2991, -1L) })
        {
            var result = consumer.OffsetsForTimes([new TopicPartitionTimestamp("by-time", 0, new Timestamp(baseTime.AddSeconds(secondsAfter)))], TimeSpan.FromSeconds(10));
            Assert.Equal(expected, result[0].Offset.Value);
        }
    }

    [Fact]
    public async Task LogAppendTimeTopicsStampTheBrokerTime()
    {
        await broker.CreateTopicAsync("append-time", configs: new() { ["message.timestamp.type"] = "LogAppendTime" });
        var before = DateTime.UtcNow.AddSeconds(-1);
        using (var producer = broker.Producer())
        {
            var report = await producer.ProduceAsync("append-time", new Message<byte[]?, byte[]?>
            {
                Value = Bytes("x"),
                Timestamp = new Timestamp(new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
            });
            Assert.Equal(TimestampType.LogAppendTime, report.Timestamp.Type);
        }
        var record = broker.ReadAll("append-time", 1, 1).Single();
        Assert.Equal(TimestampType.LogAppendTime, record.Message.Timestamp.Type);
        Assert.True(record.Message.Timestamp.UtcDateTime >= before, $"log append time {record.Message.Timestamp.UtcDateTime:O} is before {before:O}");
    }

    [Fact]
    public async Task ProducingToANewTopicCreatesIt()
    {
        using (var producer = broker.Producer())
        {
            var report = await producer.ProduceAsync("auto-created", new Message<byte[]?, byte[]?> { Value = Bytes("hello") });
            Assert.Equal(0, report.Offset.Value);
        }
        using var admin = broker.Admin();
        var metadata = admin.GetMetadata("auto-created", TimeSpan.FromSeconds(10));
        Assert.Equal(ErrorCode.NoError, metadata.Topics.Single().Error.Code);
        Assert.Single(metadata.Topics.Single().Partitions);
    }

    [Fact]
    public async Task RetentionDeletesWholeSegmentsAndAdvancesTheLogStart()
    {
        await broker.CreateTopicAsync("retained", configs: new() { ["segment.bytes"] = "4096", ["retention.bytes"] = "8192" });
        using (var producer = broker.Producer(c => c.LingerMs = 0))
        {
            for (var i = 0; i < 200; i++)
                await producer.ProduceAsync("retained", new Message<byte[]?, byte[]?> { Value = Bytes(new string('r', 200) + i) });
        }
        var log = broker.Server.State.Topics.GetPartition("retained", 0)!;
        Assert.True(log.SegmentCount > 3, $"expected several segments, have {log.SegmentCount}");
        Assert.True(log.EnforceRetention() > 0);
        using var consumer = broker.Consumer();
        var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition("retained", 0), TimeSpan.FromSeconds(10));
        Assert.Equal(200, watermarks.High.Value);
        Assert.True(watermarks.Low.Value > 0, "log start offset did not advance");
        Assert.Equal(log.LogStartOffset, watermarks.Low.Value);
        Assert.True(log.SizeInBytes <= 8192 + 4096, $"log holds {log.SizeInBytes} bytes, more than retention.bytes plus one segment");
        var remaining = broker.ReadAll("retained", 1, (int)(200 - watermarks.Low.Value));
        Assert.Equal(watermarks.Low.Value, remaining[0].Offset.Value);
        Assert.Equal(new string('r', 200) + watermarks.Low.Value, Encoding.UTF8.GetString(remaining[0].Message.Value!));
    }
}
