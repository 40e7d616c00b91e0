using System.Text;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>Idempotent producers: InitProducerId, duplicates answered with the original offset, gaps, epochs, restarts.</summary>
public sealed class IdempotenceTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    internal static byte[] Batch(long pid, short epoch, int seq, int count, string prefix = "v", bool transactional = false)
    {
        var b = new RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, BaseSequence = seq, IsTransactional = transactional };
        for (var i = 0; i < count; i++) b.Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes(prefix + (seq + i)));
        return b.Build();
    }

    internal static async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(RawKafkaClient raw, string topic, byte[] records, string? transactionalId = null, short version = 9)
    {
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TransactionalId = transactionalId,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = records }] }],
        };
        var response = await raw.SendAsync<ProduceResponse>(request, version);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses);
    }

    internal static async Task<(long Pid, short Epoch)> InitAsync(RawKafkaClient raw, short version = 0, string? transactionalId = null)
    {
        var response = await raw.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 60_000 }, version);
        Assert.Equal(ErrorCode.None, (ErrorCode)response.ErrorCode);
        return (response.ProducerId, response.ProducerEpoch);
    }

    [Fact]
    public async Task ResentBatchGetsTheOriginalOffsetAndGapsAndStaleEpochsAreRejected()
    {
        await broker.CreateTopicAsync("idem-raw");
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var (pid, epoch) = await InitAsync(raw);
        Assert.True(pid >= 0);
        Assert.Equal(0, epoch);

        var first = Batch(pid, 0, 0, 3);
        var appended = await ProduceAsync(raw, "idem-raw", first.ToArray());
        Assert.Equal((ErrorCode.None, 0L), ((ErrorCode)appended.ErrorCode, appended.BaseOffset));
        Assert.Equal(3, (await ProduceAsync(raw, "idem-raw", Batch(pid, 0, 3, 2))).BaseOffset);

        var retried = await ProduceAsync(raw, "idem-raw", first.ToArray());
        Assert.Equal((ErrorCode.None, 0L), ((ErrorCode)retried.ErrorCode, retried.BaseOffset));
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, (ErrorCode)(await ProduceAsync(raw, "idem-raw", Batch(pid, 0, 9, 1))).ErrorCode);
        Assert.Equal(5, (await ProduceAsync(raw, "idem-raw", Batch(pid, 1, 0, 1))).BaseOffset); // KIP-360 bump
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (ErrorCode)(await ProduceAsync(raw, "idem-raw", Batch(pid, 0, 5, 1))).ErrorCode);
        Assert.Equal(6, broker.Server.State.Topics.GetPartition("idem-raw", 0)!.LogEndOffset);

        var described = await raw.SendAsync<DescribeProducersResponse>(new DescribeProducersRequest { Topics = [new() { Name = "idem-raw", PartitionIndexes = [0] }] }, 0);
        var producer = Assert.Single(Assert.Single(Assert.Single(described.Topics).Partitions).ActiveProducers);
        Assert.Equal((pid, 1, 0), (producer.ProducerId, producer.ProducerEpoch, producer.LastSequence));
    }

    [Fact]
    public async Task InitProducerIdHandsOutDistinctIdsInEveryVersion()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var ids = new HashSet<long>();
        for (short v = 0; v <= 5; v++) Assert.True(ids.Add((await InitAsync(raw, v)).Pid));
    }

    [Fact]
    public async Task ConfluentIdempotentProducerWritesEveryRecordOnce()
    {
        await broker.CreateTopicAsync("idem-client", partitions: 3);
        using (var producer = broker.Producer(c =>
        {
            c.EnableIdempotence = true;
            c.MaxInFlight = 5;
            c.LingerMs = 1;
            c.BatchNumMessages = 50;
        }))
        {
            for (var i = 0; i < 3000; i++)
                producer.Produce("idem-client", new Message<byte[]?, byte[]?> { Key = Encoding.UTF8.GetBytes("k" + (i % 7)), Value = Encoding.UTF8.GetBytes(i.ToString()) });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        var records = broker.ReadAll("idem-client", 3, 3000);
        Assert.Equal(3000, records.Select(r => Encoding.UTF8.GetString(r.Message.Value!)).Distinct().Count());
        foreach (var partition in records.GroupBy(r => r.Partition.Value))
        {
            var values = partition.OrderBy(r => r.Offset.Value).Select(r => int.Parse(Encoding.UTF8.GetString(r.Message.Value!))).ToList();
            Assert.Equal(values.Order(), values);
        }
        Assert.NotEmpty(broker.Server.State.Topics.GetPartition("idem-client", 0)!.ActiveProducers());
    }

    [Fact]
    public async Task SequencesSurviveARestart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-idem-" + Guid.NewGuid().ToString("N"));
        try
        {
            long pid;
            byte[] second;
            await using (var server = await TributaryServer.StartEphemeralAsync(dataDir))
            {
                await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
                (pid, _) = await InitAsync(raw);
                server.State.Topics.Create("idem-restart", 1, new Dictionary<string, string>());
                Assert.Equal(0, (await ProduceAsync(raw, "idem-restart", Batch(pid, 0, 0, 2))).BaseOffset);
                second = Batch(pid, 0, 2, 2);
                Assert.Equal(2, (await ProduceAsync(raw, "idem-restart", second.ToArray())).BaseOffset);
            }
            await using (var server = await TributaryServer.StartEphemeralAsync(dataDir))
            {
                await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
                var retried = await ProduceAsync(raw, "idem-restart", second);
                Assert.Equal((ErrorCode.None, 2L), ((ErrorCode)retried.ErrorCode, retried.BaseOffset));
                Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, (ErrorCode)(await ProduceAsync(raw, "idem-restart", Batch(pid, 0, 5, 1))).ErrorCode);
                Assert.Equal(4, (await ProduceAsync(raw, "idem-restart", Batch(pid, 0, 4, 1))).BaseOffset);
                Assert.NotEqual(pid, (await InitAsync(raw)).Pid); // ids are never reissued
            }
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }
}
