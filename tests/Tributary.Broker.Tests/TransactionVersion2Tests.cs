using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// Transaction version 2 (KIP-890 part 2), as a Kafka 4 producer speaks it: no AddPartitionsToTxn or AddOffsetsToTxn
/// (Produce v12 and TxnOffsetCommit v5 add their partitions), and an epoch bump on every EndTxn v5, which fences a late
/// write of the ended transaction. No client library on this machine speaks it yet, so the producer here is raw
/// requests; what it wrote is read with librdkafka.
/// </summary>
public sealed class TransactionVersion2Tests : IAsyncLifetime
{
    private TributaryServer _server = null!;
    private RawKafkaClient _client = null!;

    private string Bootstrap => _server.BootstrapServers.Replace("localhost", "127.0.0.1");

    public async Task InitializeAsync()
    {
        _server = await TributaryServer.StartEphemeralAsync();
        _client = await RawKafkaClient.ConnectAsync(Bootstrap);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "tv2", NumPartitions = 1, ReplicationFactor = 1 }]);
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _server.StopAsync();
    }

    private async Task<(long ProducerId, short Epoch)> InitAsync(string transactionalId)
    {
        var init = await _client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 60_000 }, 5);
        Assert.Equal(0, init.ErrorCode);
        return (init.ProducerId, init.ProducerEpoch);
    }

    private async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(string transactionalId, long producerId, short epoch, int sequence, string value)
    {
        var batch = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = true }
            .Add(1, System.Text.Encoding.UTF8.GetBytes(value)).Build();
        var response = await _client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = "tv2", PartitionData = [new() { Index = 0, Records = batch }] }],
        }, 12);
        return response.Responses[0].PartitionResponses[0];
    }

    private async Task<EndTxnResponse> EndAsync(string transactionalId, long producerId, short epoch, bool commit, short version = 5) =>
        await _client.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = transactionalId, ProducerId = producerId, ProducerEpoch = epoch, Committed = commit }, version);

    private List<string> Read(IsolationLevel isolation)
    {
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = "tv2-reader-" + Guid.NewGuid().ToString("N"),
            IsolationLevel = isolation,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset("tv2", 0, 0));
        var values = new List<string>();
        while (true)
        {
            var result = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"no end of partition after {values.Count} records");
            if (result.IsPartitionEOF) return values;
            values.Add(result.Message.Value);
        }
    }

    [Fact]
    public async Task ApiVersions_finalizes_transaction_version_2_and_serves_its_versions()
    {
        var versions = await _client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "raw", ClientSoftwareVersion = "1" }, 3);

        var supported = Assert.Single(versions.SupportedFeatures, f => f.Name == "transaction.version");
        Assert.Equal((0, 2), (supported.MinVersion, supported.MaxVersion));
        var finalized = Assert.Single(versions.FinalizedFeatures, f => f.Name == "transaction.version");
        Assert.Equal((2, 2), (finalized.MinVersionLevel, finalized.MaxVersionLevel));
        short Max(ApiKey key) => versions.ApiKeys.Single(k => k.ApiKey == (short)key).MaxVersion;
        Assert.Equal((12, 5, 5), (Max(ApiKey.Produce), Max(ApiKey.EndTxn), Max(ApiKey.TxnOffsetCommit)));
    }

    [Fact]
    public async Task Every_end_bumps_the_epoch_and_a_late_write_of_the_ended_transaction_is_fenced()
    {
        var (producerId, epoch) = await InitAsync("tv2-bump");

        // Transaction 1: Produce v12 adds the partition itself; EndTxn v5 answers the next epoch.
        Assert.Equal(0, (await ProduceAsync("tv2-bump", producerId, epoch, 0, "committed")).ErrorCode);
        var committed = await EndAsync("tv2-bump", producerId, epoch, commit: true);
        Assert.Equal((0, producerId, (short)(epoch + 1)), (committed.ErrorCode, committed.ProducerId, committed.ProducerEpoch));

        // A write of transaction 1 arriving now (its epoch) is fenced; a retried end gets the same answer again.
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync("tv2-bump", producerId, epoch, 1, "late")).ErrorCode);
        var retried = await EndAsync("tv2-bump", producerId, epoch, commit: true);
        Assert.Equal((0, producerId, (short)(epoch + 1)), (retried.ErrorCode, retried.ProducerId, retried.ProducerEpoch));
        // The other decision under the old epoch is no retry: that epoch is fenced.
        Assert.Equal((short)ErrorCode.ProducerFenced, (await EndAsync("tv2-bump", producerId, epoch, commit: false)).ErrorCode);

        // Transaction 2, under the new epoch from sequence 0, aborted: the epoch moves on again.
        var next = committed.ProducerEpoch;
        Assert.Equal(0, (await ProduceAsync("tv2-bump", producerId, next, 0, "aborted")).ErrorCode);
        var aborted = await EndAsync("tv2-bump", producerId, next, commit: false);
        Assert.Equal((0, (short)(next + 1)), (aborted.ErrorCode, aborted.ProducerEpoch));

        // An empty transaction may be aborted (the epoch bumps, nothing is written) but not committed.
        var third = aborted.ProducerEpoch;
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await EndAsync("tv2-bump", producerId, third, commit: true)).ErrorCode);
        var empty = await EndAsync("tv2-bump", producerId, third, commit: false);
        Assert.Equal((0, (short)(third + 1)), (empty.ErrorCode, empty.ProducerEpoch));

        Assert.Equal(["committed"], Read(IsolationLevel.ReadCommitted));
        Assert.Equal(["committed", "aborted"], Read(IsolationLevel.ReadUncommitted));
    }

    [Fact]
    public async Task TxnOffsetCommit_v5_adds_the_offsets_partition_and_the_offsets_commit_with_the_transaction()
    {
        var (producerId, epoch) = await InitAsync("tv2-offsets");
        Assert.Equal(0, (await ProduceAsync("tv2-offsets", producerId, epoch, 0, "with-offsets")).ErrorCode);
        var offsets = await _client.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = "tv2-offsets",
            GroupId = "tv2-group",
            ProducerId = producerId,
            ProducerEpoch = epoch,
            Topics = [new() { Name = "tv2", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 42 }] }],
        }, 5);
        Assert.Equal(0, offsets.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(0, (await EndAsync("tv2-offsets", producerId, epoch, commit: true)).ErrorCode);

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        var listed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("tv2-group", [new TopicPartition("tv2", 0)])]);
        Assert.Equal(42, listed.Single().Partitions.Single().Offset.Value);
    }

    [Fact]
    public async Task Version_1_clients_keep_their_epoch_across_ends()
    {
        var (producerId, epoch) = await InitAsync("tv1-client");
        var added = await _client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tv1-client",
            V3AndBelowProducerId = producerId,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = "tv2", Partitions = [0] }],
        }, 3);
        Assert.Equal(0, added.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
        var batch = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = 0, IsTransactional = true }.Add(1, "v1"u8).Build();
        var produced = await _client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            TransactionalId = "tv1-client",
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = "tv2", PartitionData = [new() { Index = 0, Records = batch }] }],
        }, 11);
        Assert.Equal(0, produced.Responses[0].PartitionResponses[0].ErrorCode);
        var ended = await EndAsync("tv1-client", producerId, epoch, commit: true, version: 4);
        Assert.Equal(0, ended.ErrorCode);
        // The next transaction goes on under the same epoch, as before KIP-890 part 2.
        Assert.Equal(0, (await EndAsync("tv1-client", producerId, epoch, commit: true, version: 4)).ErrorCode);
    }
}
