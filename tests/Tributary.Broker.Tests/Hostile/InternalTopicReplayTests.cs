using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Groups;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Records;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Issue 20 #2: replay of __consumer_offsets and __transaction_state at start skips and reports what it cannot decode:
/// an undecodable batch on disk, or records with malformed values. Before, the first left every group "loading" for
/// ever, and a malformed transaction record ended the replay with only the ids read before it.
/// </summary>
public sealed class InternalTopicReplayTests : IAsyncLifetime
{
    private const string Topic = "replay-topic";
    private const string GoodGroup = "good-group";
    private const string BadGroup = "bad-group";
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-replay-" + Guid.NewGuid().ToString("N"));
    private TributaryServer _server = null!;

    public async Task InitializeAsync() => _server = await StartAsync();

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

    private Task<TributaryServer> StartAsync() => TributaryServer.StartEphemeralAsync(_dataDir);

    private async Task RestartAsync()
    {
        await _server.StopAsync();
        _server = await StartAsync();
        await _server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(15));
        await _server.Transactions.WaitUntilLoadedAsync().WaitAsync(TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task Undecodable_batches_and_records_are_skipped_and_every_other_group_and_transaction_loads()
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        }
        Commit(GoodGroup, 41);
        Commit(BadGroup, 7);
        CommitTransaction("good-txn");

        // 1. A batch no codec can read, at the end of the partitions holding the good group and transaction.
        var offsetsPartition = Partition(GroupSettings.OffsetsTopic, OffsetsTopicRecords.PartitionFor(GoodGroup, PartitionCount(GroupSettings.OffsetsTopic)));
        var statePartition = Partition(TransactionSettings.StateTopic, TransactionStateRecords.PartitionFor("late-txn", PartitionCount(TransactionSettings.StateTopic)));
        var offsetsEnd = offsetsPartition.Log.HighWatermark;
        var stateEnd = statePartition.Log.HighWatermark;
        await _server.StopAsync();
        PoisonBatch.AppendTo(offsetsPartition.Directory, offsetsEnd);
        PoisonBatch.AppendTo(statePartition.Directory, stateEnd);
        _server = await StartAsync();
        await _server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(15));
        await _server.Transactions.WaitUntilLoadedAsync().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(41, Committed(GoodGroup));
        Assert.Equal(7, Committed(BadGroup));

        // 2. Records with malformed values, written below Produce (which refuses clients on internal topics), then
        //    good state after them in the same partitions.
        offsetsPartition = Partition(GroupSettings.OffsetsTopic, offsetsPartition.Index);
        statePartition = Partition(TransactionSettings.StateTopic, statePartition.Index);
        await AppendAsync(offsetsPartition.Log, OffsetsTopicRecords.OffsetCommitKey(BadGroup, Topic, 0), [0, 3, 0]); // truncated v3 value
        await AppendAsync(offsetsPartition.Log, OffsetsTopicRecords.GroupMetadataKey(BadGroup), [0, 9, 1, 2]); // unknown version
        await AppendAsync(statePartition.Log, TransactionStateRecords.Key("bad-txn"), [0, 7, 1]); // unknown version
        Commit(GoodGroup, 42);
        CommitTransaction("late-txn");

        await RestartAsync();
        Assert.Equal(42, Committed(GoodGroup));
        Assert.Equal(7, Committed(BadGroup)); // the key keeps its last good value
        var described = await _server.Transactions.DescribeAsync(["good-txn", "late-txn", "bad-txn"]);
        Assert.Contains(described, d => d.TransactionalId == "good-txn" && d.State == TransactionState.CompleteCommit);
        Assert.Contains(described, d => d.TransactionalId == "late-txn" && d.State == TransactionState.CompleteCommit);

        // Groups and transactions work as usual after the skip.
        Commit(GoodGroup, 43);
        CommitTransaction("late-txn");
        await RestartAsync();
        Assert.Equal(43, Committed(GoodGroup));
    }

    private int PartitionCount(string topic) => _server.State.Topics.Get(topic)!.PartitionCount;

    private (int Index, Storage.PartitionLog Log, string Directory) Partition(string topic, int index)
    {
        var log = _server.State.Topics.GetPartition(topic, index)!;
        return (index, log, log.Directory);
    }

    private static async Task AppendAsync(Storage.PartitionLog log, byte[] key, byte[] value) =>
        await log.AppendAsync(new RecordBatchBuilder().Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), key, value).Build());

    private void Commit(string group, long offset)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = group, EnableAutoCommit = false }).Build();
        consumer.Commit([new TopicPartitionOffset(Topic, 0, offset)]);
    }

    private long Committed(string group)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = group, EnableAutoCommit = false }).Build();
        return consumer.Committed([new TopicPartition(Topic, 0)], TimeSpan.FromSeconds(10)).Single().Offset.Value;
    }

    private void CommitTransaction(string transactionalId)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _server.BootstrapServers, TransactionalId = transactionalId }).Build();
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        producer.Produce(Topic, new Message<string, string> { Key = "k", Value = transactionalId });
        producer.CommitTransaction(TimeSpan.FromSeconds(30));
    }
}
