using System.Text;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// Fetch sessions (KIP-227), long polling and ListOffsets details, through raw requests: librdkafka does not use
/// fetch sessions, but the Java client does, so the protocol is exercised directly.
/// </summary>
public sealed class FetchProtocolTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private async Task ProduceAsync(string topic, int partition, int count, int start = 0)
    {
        using var producer = broker.Producer();
        for (var i = 0; i < count; i++)
            producer.Produce(new TopicPartition(topic, partition), new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes("v" + (start + i)) });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }

    private static FetchRequest Fetch(Guid topicId, int sessionId, int epoch, params (int Partition, long Offset)[] partitions) => new()
    {
        MaxWaitMs = 0,
        MinBytes = 1,
        MaxBytes = 1 << 20,
        SessionId = sessionId,
        SessionEpoch = epoch,
        Topics = partitions.Length == 0 ? [] :
        [
            new FetchRequest.FetchTopic
            {
                TopicId = topicId,
                Partitions = partitions.Select(p => new FetchRequest.FetchPartition { Partition = p.Partition, FetchOffset = p.Offset, PartitionMaxBytes = 1 << 20 }).ToList(),
            },
        ],
    };

    [Fact]
    public async Task IncrementalFetchSessionsCarryOnlyNews()
    {
        await broker.CreateTopicAsync("sessions", 2);
        await ProduceAsync("sessions", 0, 10);
        var topicId = broker.Server.State.Topics.Get("sessions")!.Id;
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);

        // Full fetch with epoch 0 opens a session and answers every partition.
        var full = await client.SendAsync<FetchResponse>(Fetch(topicId, 0, 0, (0, 0), (1, 0)), 13);
        Assert.Equal((short)ErrorCode.None, full.ErrorCode);
        Assert.NotEqual(0, full.SessionId);
        var partitions = full.Responses.Single().Partitions;
        Assert.Equal([0, 1], partitions.Select(p => p.PartitionIndex).Order());
        Assert.Equal(10, partitions.Single(p => p.PartitionIndex == 0).HighWatermark);
        Assert.True(partitions.Single(p => p.PartitionIndex == 0).Records!.Value.Length > 0);

        // Incremental fetch at the end: nothing new anywhere, so no partitions at all.
        var quiet = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, 1, (0, 10)), 13);
        Assert.Equal((short)ErrorCode.None, quiet.ErrorCode);
        Assert.Empty(quiet.Responses.SelectMany(t => t.Partitions));

        // New data in partition 1 only: only partition 1 comes back, though the request named no partitions.
        await ProduceAsync("sessions", 1, 3);
        var news = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, 2), 13);
        var changed = news.Responses.SelectMany(t => t.Partitions).ToList();
        Assert.Equal([1], changed.Select(p => p.PartitionIndex));
        Assert.Equal(3, changed[0].HighWatermark);

        // A stale epoch is refused; the session id then still works with the right epoch.
        var stale = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, 2), 13);
        Assert.Equal((short)ErrorCode.InvalidFetchSessionEpoch, stale.ErrorCode);
        var unknown = await client.SendAsync<FetchResponse>(Fetch(topicId, 123456789, 5), 13);
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, unknown.ErrorCode);

        // Forgetting partition 0 drops it from the session: new data there is no longer reported.
        var forget = Fetch(topicId, full.SessionId, 3);
        forget.ForgottenTopicsData = [new FetchRequest.ForgottenTopic { TopicId = topicId, Partitions = [0] }];
        await client.SendAsync<FetchResponse>(forget, 13);
        await ProduceAsync("sessions", 0, 2, start: 10);
        var afterForget = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, 4), 13);
        Assert.DoesNotContain(afterForget.Responses.SelectMany(t => t.Partitions), p => p.PartitionIndex == 0);

        // Epoch -1 closes the session and fetches without one.
        var closing = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, -1, (0, 0)), 13);
        Assert.Equal(0, closing.SessionId);
        var gone = await client.SendAsync<FetchResponse>(Fetch(topicId, full.SessionId, 5), 13);
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, gone.ErrorCode);
    }

    [Fact]
    public async Task UnknownTopicIdIsReportedPerPartition()
    {
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var response = await client.SendAsync<FetchResponse>(Fetch(Guid.NewGuid(), 0, -1, (0, 0)), 13);
        Assert.Equal((short)ErrorCode.UnknownTopicId, response.Responses.Single().Partitions.Single().ErrorCode);
    }

    [Fact]
    public async Task FetchBeyondTheEndIsOffsetOutOfRange()
    {
        await broker.CreateTopicAsync("out-of-range");
        await ProduceAsync("out-of-range", 0, 5);
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "out-of-range", Partitions = [new FetchRequest.FetchPartition { FetchOffset = 6, PartitionMaxBytes = 1 << 20 }] }],
        };
        var response = await client.SendAsync<FetchResponse>(request, 11);
        var partition = response.Responses.Single().Partitions.Single();
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, partition.ErrorCode);
        Assert.Equal(5, partition.HighWatermark);
    }

    [Fact]
    public async Task LongPollingFetchAnswersWhenDataArrives()
    {
        await broker.CreateTopicAsync("long-poll");
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new FetchRequest
        {
            MaxWaitMs = 30_000,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "long-poll", Partitions = [new FetchRequest.FetchPartition { FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        // The fetch waits (the broker would hold it 30 s); a produce must wake it with the record.
        var pending = client.SendAsync<FetchResponse>(request, 12);
        Assert.False(pending.IsCompleted);
        await ProduceAsync("long-poll", 0, 1);
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(20));
        var partition = response.Responses.Single().Partitions.Single();
        Assert.Equal(1, partition.HighWatermark);
        Assert.True(partition.Records!.Value.Length > 0);
    }

    [Fact]
    public async Task FetchWithNoDataWaitsAtMostMaxWait()
    {
        await broker.CreateTopicAsync("empty-poll");
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new FetchRequest
        {
            MaxWaitMs = 100,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "empty-poll", Partitions = [new FetchRequest.FetchPartition { FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var response = await client.SendAsync<FetchResponse>(request, 12).WaitAsync(TimeSpan.FromSeconds(10));
        var partition = response.Responses.Single().Partitions.Single();
        Assert.Equal((short)ErrorCode.None, partition.ErrorCode);
        Assert.Equal(0, partition.Records?.Length ?? 0);
    }

    [Fact]
    public async Task ListOffsetsAnswersEarliestLatestAndMaxTimestamp()
    {
        await broker.CreateTopicAsync("list-offsets");
        using (var producer = broker.Producer(c => c.LingerMs = 20))
        {
            var stamps = new long[] { 5000, 9000, 7000, 1000 };
            foreach (var ts in stamps)
                producer.Produce("list-offsets", new Message<byte[]?, byte[]?> { Value = [1], Timestamp = new Timestamp(ts, TimestampType.CreateTime) });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        ListOffsetsResponse.ListOffsetsPartitionResponse Ask(ListOffsetsResponse r) => r.Topics.Single().Partitions.Single();
        ListOffsetsRequest Request(long timestamp) => new()
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = "list-offsets", Partitions = [new ListOffsetsRequest.ListOffsetsPartition { Timestamp = timestamp }] }],
        };
        Assert.Equal(4, Ask(await client.SendAsync<ListOffsetsResponse>(Request(-1), 7)).Offset);
        Assert.Equal(0, Ask(await client.SendAsync<ListOffsetsResponse>(Request(-2), 7)).Offset);
        var max = Ask(await client.SendAsync<ListOffsetsResponse>(Request(-3), 7));
        Assert.Equal(1, max.Offset);
        Assert.Equal(9000, max.Timestamp);
        var byTime = Ask(await client.SendAsync<ListOffsetsResponse>(Request(6000), 1));
        Assert.Equal(1, byTime.Offset);
        Assert.Equal(9000, byTime.Timestamp);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(12)]
    public async Task EveryMetadataVersionDescribesTheBroker(short version)
    {
        await broker.CreateTopicAsync("meta-" + version, 3);
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = "meta-" + version }] };
        var response = await client.SendAsync<MetadataResponse>(request, version);
        Assert.Equal(broker.Server.Port, response.Brokers.Single().Port);
        var topic = response.Topics.Single();
        Assert.Equal((short)ErrorCode.None, topic.ErrorCode);
        Assert.Equal(3, topic.Partitions.Count);
        if (version >= 10) Assert.Equal(broker.Server.State.Topics.Get("meta-" + version)!.Id, topic.TopicId);
        if (version >= 2) Assert.Equal(broker.Server.State.Identity.ClusterId, response.ClusterId);
    }
}
