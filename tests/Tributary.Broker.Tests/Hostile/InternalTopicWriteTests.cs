using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Groups;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Issue 20 #6: only the broker writes its internal topics. Produce to them is INVALID_TOPIC_EXCEPTION (Kafka's "Cannot
/// append to internal topic"), DeleteRecords INVALID_TOPIC_EXCEPTION (Kafka's "Cannot delete records of internal
/// topic"), DeleteTopics INVALID_TOPIC_EXCEPTION, and CreatePartitions and a cleanup.policy other than compact
/// POLICY_VIOLATION; the coordinators and the registry still write them.
/// </summary>
public sealed class InternalTopicWriteTests : IAsyncLifetime
{
    private const string Topic = "owned-topic-test";
    private const string Group = "forged-group";
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-internal-" + Guid.NewGuid().ToString("N"));
    private TributaryServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TributaryServer.StartEphemeralAsync(_dataDir);
        using var admin = Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        Commit(5); // the group coordinator creates __consumer_offsets
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _server.BootstrapServers, TransactionalId = "owned-txn" }).Build();
        producer.InitTransactions(TimeSpan.FromSeconds(30)); // the transaction coordinator creates __transaction_state
    }

    public async Task DisposeAsync()
    {
        await _server.StopAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static TheoryData<string> Owned => [GroupSettings.OffsetsTopic, Transactions.TransactionSettings.StateTopic, TributaryServer.SchemasTopic];

    private IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build();

    private void Commit(long offset)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = Group, EnableAutoCommit = false }).Build();
        consumer.Commit([new TopicPartitionOffset(Topic, 0, offset)]);
    }

    private long Committed()
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = Group, EnableAutoCommit = false }).Build();
        return consumer.Committed([new TopicPartition(Topic, 0)], TimeSpan.FromSeconds(10)).Single().Offset.Value;
    }

    private async Task<Error> ProduceAsync(TopicPartition partition, byte[] key, byte[] value)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = _server.BootstrapServers, MessageTimeoutMs = 10_000 }).Build();
        try
        {
            await producer.ProduceAsync(partition, new Message<byte[], byte[]> { Key = key, Value = value });
            return new Error(ErrorCode.NoError);
        }
        catch (ProduceException<byte[], byte[]> e)
        {
            return e.Error;
        }
    }

    [Theory]
    [MemberData(nameof(Owned))]
    public async Task Produce_to_an_internal_topic_is_invalid_topic_and_appends_nothing(string topic)
    {
        Assert.NotNull(_server.State.Topics.Get(topic));
        var log = _server.State.Topics.GetPartition(topic, 0)!;
        long end = log.HighWatermark;
        var error = await ProduceAsync(new TopicPartition(topic, 0), Encoding.UTF8.GetBytes("key"), Encoding.UTF8.GetBytes("value"));
        Assert.Equal(ErrorCode.TopicException, error.Code);
        Assert.Equal(end, log.HighWatermark);
    }

    [Fact]
    public async Task A_forged_offset_commit_record_no_longer_changes_the_group_s_committed_offset()
    {
        int partitions = _server.State.Topics.Get(GroupSettings.OffsetsTopic)!.PartitionCount;
        var forged = new TopicPartition(GroupSettings.OffsetsTopic, OffsetsTopicRecords.PartitionFor(Group, partitions));
        var error = await ProduceAsync(forged, OffsetsTopicRecords.OffsetCommitKey(Group, Topic, 0),
            OffsetsTopicRecords.OffsetCommitValue(new CommittedOffset(999_999, -1, "", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())));
        Assert.Equal(ErrorCode.TopicException, error.Code);

        // Replay at start is where a forged record took effect.
        await _server.StopAsync();
        _server = await TributaryServer.StartEphemeralAsync(_dataDir);
        await _server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(5, Committed());

        // The coordinator itself still writes the topic.
        Commit(6);
        Assert.Equal(6, Committed());
    }

    [Fact]
    public async Task Produce_to_a_client_topic_named_with_two_underscores_is_still_accepted()
    {
        using var admin = Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "__client-owned", NumPartitions = 1, ReplicationFactor = 1 }]);
        var error = await ProduceAsync(new TopicPartition("__client-owned", 0), [1], [2]);
        Assert.Equal(ErrorCode.NoError, error.Code);
    }

    [Theory]
    [MemberData(nameof(Owned))]
    public async Task DeleteRecords_on_an_internal_topic_is_invalid_topic(string topic)
    {
        using var admin = Admin();
        var e = await Assert.ThrowsAsync<DeleteRecordsException>(() => admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, Offset.End)]));
        Assert.Equal(ErrorCode.TopicException, e.Results.Single().Error.Code);
        Assert.Equal(0, _server.State.Topics.GetPartition(topic, 0)!.LogStartOffset);
    }

    [Theory]
    [MemberData(nameof(Owned))]
    public async Task DeleteTopics_of_an_internal_topic_is_invalid_topic(string topic)
    {
        using var admin = Admin();
        var e = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync([topic]));
        Assert.Equal(ErrorCode.TopicException, e.Results.Single().Error.Code);
        Assert.NotNull(_server.State.Topics.Get(topic));
    }

    [Theory]
    [MemberData(nameof(Owned))]
    public async Task CreatePartitions_on_an_internal_topic_is_a_policy_violation(string topic)
    {
        using var admin = Admin();
        int before = _server.State.Topics.Get(topic)!.PartitionCount;
        var e = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = before + 1 }]));
        Assert.Equal(ErrorCode.PolicyViolation, e.Results.Single().Error.Code);
        Assert.Equal(before, _server.State.Topics.Get(topic)!.PartitionCount);
    }

    [Theory]
    [InlineData(AlterConfigOpType.Set, "delete")]
    [InlineData(AlterConfigOpType.Set, "compact,delete")]
    [InlineData(AlterConfigOpType.Delete, null)] // back to the broker default, delete
    [InlineData(AlterConfigOpType.Append, "delete")]
    public async Task A_cleanup_policy_other_than_compact_on_an_internal_topic_is_a_policy_violation(AlterConfigOpType op, string? value)
    {
        using var admin = Admin();
        foreach (var topic in Owned)
        {
            var change = new ConfigEntry { Name = "cleanup.policy", Value = value, IncrementalOperation = op };
            var e = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() =>
                admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>> { [new ConfigResource { Type = ResourceType.Topic, Name = topic }] = [change] }));
            Assert.Equal(ErrorCode.PolicyViolation, e.Results.Single().Error.Code);
            Assert.Equal("compact", _server.State.Topics.Get(topic)!.Configs["cleanup.policy"]);
        }
    }

    [Fact]
    public async Task Configs_that_keep_an_internal_topic_compacted_can_still_change()
    {
        using var admin = Admin();
        var change = new ConfigEntry { Name = "segment.bytes", Value = "1048576", IncrementalOperation = AlterConfigOpType.Set };
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>> { [new ConfigResource { Type = ResourceType.Topic, Name = GroupSettings.OffsetsTopic }] = [change] });
        Assert.Equal("1048576", _server.State.Topics.Get(GroupSettings.OffsetsTopic)!.Configs["segment.bytes"]);
    }
}
