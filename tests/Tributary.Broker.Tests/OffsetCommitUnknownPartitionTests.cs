using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;
using KafkaError = Confluent.Kafka.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 19 #1: a commit to a topic or partition that does not exist is answered UNKNOWN_TOPIC_OR_PARTITION for that
/// partition and is not stored, as Kafka checks its metadata before the group coordinator; the other partitions of the
/// same request are committed. The same for TxnOffsetCommit.
/// </summary>
public sealed class OffsetCommitUnknownPartitionTests : IAsyncLifetime
{
    private TributaryServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [TributaryServer.SchemaRegistryEnableSetting] = "false" });
        _server.State.Topics.Create("known", 2, new Dictionary<string, string>());
        await _server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
    }

    public Task DisposeAsync() => _server.StopAsync();

    [Fact]
    public void A_real_client_commit_to_a_missing_topic_or_partition_fails_for_those_and_stores_the_rest()
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = _server.BootstrapServers,
            GroupId = "commit-unknown",
            EnableAutoCommit = false,
        }).Build();

        // librdkafka reports the first failed partition of the request.
        var failure = Assert.Throws<KafkaException>(() => consumer.Commit(
        [
            new TopicPartitionOffset("known", 0, 5),
            new TopicPartitionOffset("missing", 0, 3),
            new TopicPartitionOffset("known", 7, 1),
        ]));

        Assert.Equal(KafkaError.UnknownTopicOrPart, failure.Error.Code);
        var committed = consumer.Committed([new TopicPartition("known", 0), new TopicPartition("missing", 0), new TopicPartition("known", 7)], TimeSpan.FromSeconds(10))
            .ToDictionary(c => c.TopicPartition, c => c.Offset.Value);
        Assert.Equal(5, committed[new TopicPartition("known", 0)]);
        Assert.Equal(Offset.Unset.Value, committed[new TopicPartition("missing", 0)]);
        Assert.Equal(Offset.Unset.Value, committed[new TopicPartition("known", 7)]);
    }

    [Fact]
    public async Task A_transactional_commit_to_a_missing_partition_is_refused_for_it_and_staged_for_the_rest()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(_server.BootstrapServers);
        var (pid, epoch) = await IdempotenceTests.InitAsync(raw, 3, "txn-unknown");
        await raw.SendAsync<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest { TransactionalId = "txn-unknown", ProducerId = pid, ProducerEpoch = epoch, GroupId = "g-txn-unknown" }, 3);

        var response = await raw.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = "txn-unknown",
            GroupId = "g-txn-unknown",
            ProducerId = pid,
            ProducerEpoch = epoch,
            Topics =
            [
                new() { Name = "known", Partitions = [new() { PartitionIndex = 1, CommittedOffset = 9 }, new() { PartitionIndex = 2, CommittedOffset = 9 }] },
                new() { Name = "missing", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 9 }] },
            ],
        }, 3);

        Assert.Equal(ErrorCode.None, (ErrorCode)response.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, (ErrorCode)response.Topics[0].Partitions[1].ErrorCode);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, (ErrorCode)response.Topics[1].Partitions[0].ErrorCode);
        var end = await raw.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "txn-unknown", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(0, end.ErrorCode);
        var (error, offsets) = await _server.Groups.FetchOffsetsAsync("g-txn-unknown", null);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal([("known", 1, 9L)], offsets.Select(o => (o.Topic, o.Partition, o.Offset!.Offset)));
    }
}
