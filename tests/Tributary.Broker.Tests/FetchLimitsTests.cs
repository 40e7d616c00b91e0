using System.Buffers.Binary;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>A broker whose fetch.max.bytes is 64 KiB, so response caps show with small data.</summary>
public sealed class SmallFetchBrokerFixture : IAsyncLifetime
{
    public const int FetchMaxBytes = 64 * 1024;

    public TributaryServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["fetch.max.bytes"] = FetchMaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    public async Task DisposeAsync() => await Server.StopAsync();
}

/// <summary>
/// Fetch requests a hostile client can shape: the same partition named many times (answered once, as Kafka's
/// request map does, in linear time) and byte limits far beyond what a response can carry (capped by
/// fetch.max.bytes before anything is read).
/// </summary>
public sealed class FetchLimitsTests(SmallFetchBrokerFixture broker) : IClassFixture<SmallFetchBrokerFixture>
{
    private string Bootstrap => broker.Server.BootstrapServers;

    /// <summary>One batch per record (linger 0, a flush after each), so offsets and batch boundaries coincide.</summary>
    private async Task ProduceBatchesAsync(string topic, int partitions, int perPartition, int valueBytes)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build())
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = Bootstrap, LingerMs = 0, Acks = Acks.All }).Build();
        for (var p = 0; p < partitions; p++)
        {
            for (var i = 0; i < perPartition; i++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<byte[]?, byte[]?> { Value = new byte[valueBytes] });
            }
        }
    }

    private static FetchRequest.FetchPartition At(int partition, long offset, int maxBytes = 1 << 20) =>
        new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = maxBytes };

    private static long FirstBaseOffset(FetchResponse.PartitionData partition) =>
        BinaryPrimitives.ReadInt64BigEndian(partition.Records!.Value.Span);

    [Fact]
    public async Task A_partition_named_twice_is_answered_once_where_first_named_with_the_last_offset()
    {
        await ProduceBatchesAsync("fetch-duplicates", 2, 4, 10);
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics =
            [
                new FetchRequest.FetchTopic { Topic = "fetch-duplicates", Partitions = [At(0, 0), At(1, 0)] },
                new FetchRequest.FetchTopic { Topic = "fetch-duplicates", Partitions = [At(0, 3)] },
            ],
        };

        var response = await client.SendAsync<FetchResponse>(request, 12);

        var partitions = response.Responses.SelectMany(t => t.Partitions).ToList();
        Assert.Equal([0, 1], partitions.Select(p => p.PartitionIndex));
        Assert.Equal(3, FirstBaseOffset(partitions[0]));
        Assert.Equal(0, FirstBaseOffset(partitions[1]));
    }

    [Fact]
    public async Task Duplicates_by_topic_id_collapse_and_an_unknown_id_is_answered_once()
    {
        await ProduceBatchesAsync("fetch-duplicate-ids", 1, 2, 10);
        var topicId = broker.Server.State.Topics.Get("fetch-duplicate-ids")!.Id;
        var unknown = Guid.NewGuid();
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics =
            [
                new FetchRequest.FetchTopic { TopicId = topicId, Partitions = [At(0, 0), At(0, 1)] },
                new FetchRequest.FetchTopic { TopicId = unknown, Partitions = [At(0, 0), At(0, 0)] },
            ],
        };

        var response = await client.SendAsync<FetchResponse>(request, 13);

        Assert.Equal([topicId, unknown], response.Responses.Select(t => t.TopicId));
        var known = Assert.Single(response.Responses[0].Partitions);
        Assert.Equal(1, FirstBaseOffset(known));
        Assert.Equal((short)ErrorCode.UnknownTopicId, Assert.Single(response.Responses[1].Partitions).ErrorCode);
    }

    /// <summary>
    /// 80,000 repeats of one partition (a 2.6 MB request). Linear handling answers in well under a second; subscribing the
    /// long-poll waiter once per repeat took tens of seconds, so the raw client's 10 s response timeout fails it.
    /// </summary>
    [Fact]
    public async Task Many_repeats_of_one_partition_are_answered_within_the_response_timeout()
    {
        await ProduceBatchesAsync("fetch-repeats", 1, 1, 10);
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "fetch-repeats", Partitions = [.. Enumerable.Range(0, 80_000).Select(_ => At(0, 0))] }],
        };

        var response = await client.SendAsync<FetchResponse>(request, 12);

        var partition = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal((short)ErrorCode.None, partition.ErrorCode);
        Assert.Equal(1, partition.HighWatermark);
    }

    /// <summary>
    /// A client asking for int.MaxValue per partition and per response gets at most fetch.max.bytes of records;
    /// only the first non-empty partition may go beyond its share, and then only by its first batch.
    /// </summary>
    [Fact]
    public async Task A_response_carries_at_most_fetch_max_bytes_whatever_the_request_asks()
    {
        await ProduceBatchesAsync("fetch-cap", 4, 10, 10_000);
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = int.MaxValue,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "fetch-cap", Partitions = [.. Enumerable.Range(0, 4).Select(p => At(p, 0, int.MaxValue))] }],
        };

        var response = await client.SendAsync<FetchResponse>(request, 12);

        var lengths = response.Responses.Single().Partitions.Select(p => p.Records?.Length ?? 0).ToList();
        Assert.True(lengths.Sum() <= SmallFetchBrokerFixture.FetchMaxBytes, $"records of {string.Join(", ", lengths)} bytes exceed fetch.max.bytes");
        Assert.True(lengths[0] > 0, "the first partition must be served");
    }

    [Fact]
    public async Task The_first_batch_is_served_whole_even_beyond_fetch_max_bytes_and_nothing_after_it()
    {
        await ProduceBatchesAsync("fetch-big-first", 2, 1, 100_000);
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxBytes = int.MaxValue,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "fetch-big-first", Partitions = [At(0, 0, int.MaxValue), At(1, 0, int.MaxValue)] }],
        };

        var response = await client.SendAsync<FetchResponse>(request, 12);

        var partitions = response.Responses.Single().Partitions;
        Assert.True(partitions[0].Records!.Value.Length > 100_000);
        Assert.Equal(0, partitions[1].Records?.Length ?? 0);
    }

    /// <summary>A min_bytes beyond fetch.max.bytes cannot be met; as Kafka, the fetch waits only for fetch.max.bytes.</summary>
    [Fact]
    public async Task A_min_bytes_beyond_fetch_max_bytes_is_satisfied_by_a_full_response()
    {
        await ProduceBatchesAsync("fetch-min-bytes", 1, 10, 10_000);
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            MaxWaitMs = 60_000,
            MinBytes = 1 << 30,
            MaxBytes = int.MaxValue,
            SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "fetch-min-bytes", Partitions = [At(0, 0, int.MaxValue)] }],
        };

        // Answered at once, well inside the raw client's 10 s response timeout, rather than after max_wait_ms.
        var response = await client.SendAsync<FetchResponse>(request, 12);

        Assert.True(response.Responses.Single().Partitions.Single().Records!.Value.Length > 0);
    }
}
