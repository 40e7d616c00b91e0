using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker;
using Tributary.Cli.Bench;
using Tributary.Cli.Kafka;

namespace Tributary.Cli.Tests;

/// <summary>
/// The bench tool against an in-process broker with tiny counts: it must run, count exactly and report
/// latencies. No timing assertions: the figures themselves come from real runs, not from tests.
/// </summary>
[Trait("Category", "Slow")]
public sealed class BenchSmokeTests : IAsyncLifetime
{
    private TributaryServer _server = null!;

    public async Task InitializeAsync()
    {
        NativeLibrdkafka.EnsureLoaded();
        _server = await TributaryServer.StartEphemeralAsync();
    }

    public async Task DisposeAsync() => await _server.StopAsync();

    private async Task CreateTopicAsync(string name, int partitions, Dictionary<string, string>? configs = null)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1, Configs = configs }]);
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka, CompressionType.None)]
    [InlineData(BenchClient.Wire, CompressionType.None)]
    [InlineData(BenchClient.Wire, CompressionType.Lz4)]
    [InlineData(BenchClient.Wire, CompressionType.Zstd)]
    public async Task ProduceThenConsumeCountsEveryRecord(BenchClient client, CompressionType compression)
    {
        var topic = $"bench-smoke-{client}-{compression}";
        await CreateTopicAsync(topic, 3);
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 3, RecordSize: 100, Count: 5_000, Producers: 2, Compression: compression, Client: client));
        var produced = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal(5_000, produced.Records);
        Assert.Equal(0, produced.Errors);
        Assert.NotNull(produced.Latency);
        Assert.Equal(5_000, produced.Latency!.Samples);
        Assert.True(produced.Latency.P50Ms <= produced.Latency.P99Ms && produced.Latency.P99Ms <= produced.Latency.MaxMs);
        Assert.Contains("\"records\": 5000", produced.ToJson());

        // librdkafka's consumer reads what was written: every batch decodes (CRC, codec, record framing) and counts.
        var consume = new ConsumeBenchmark(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = "bench" },
            new ConsumeBenchOptions(topic, 3, Consumers: 2));
        var consumed = await consume.RunAsync(null, CancellationToken.None);
        Assert.Equal(5_000, consumed.Records);
        Assert.Equal(100, consumed.RecordSize);
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka)]
    [InlineData(BenchClient.DotNet)]
    public async Task EndToEndMeasuresEveryRecordAfterWarmup(BenchClient client)
    {
        var topic = $"bench-e2e-smoke-{client}";
        await CreateTopicAsync(topic, 2);
        var e2e = new EndToEndBenchmark(
            new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = "bench-e2e" },
            new EndToEndBenchOptions(topic, 2, Rate: 2_000, Duration: TimeSpan.FromSeconds(1), Warmup: TimeSpan.Zero, Client: client));
        var result = await e2e.RunAsync(null, CancellationToken.None);
        Assert.Equal(result.Settings["produced"], result.Settings["received"]);
        Assert.True(long.Parse(result.Settings["produced"]) >= 1_000, $"produced {result.Settings["produced"]}");
        Assert.NotNull(result.Latency);
        Assert.Equal(result.Records, result.Latency!.Samples);
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka)]
    [InlineData(BenchClient.Wire)]
    public async Task IdempotentProduceWritesThroughOneProducerIdPerProducer(BenchClient client)
    {
        var topic = $"bench-idem-smoke-{client}";
        await CreateTopicAsync(topic, 1);
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 1, Count: 3_000, Idempotence: true, Client: client, BatchBytes: 16_384));
        var result = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal(3_000, result.Records);
        Assert.Equal(0, result.Errors);
        Assert.Equal("true", result.Settings["idempotence"]);
        // The broker tracked the producer's sequences: one producer, its last sequence the 3,000th record.
        var producer = Assert.Single(_server.State.Topics.GetPartition(topic, 0)!.ActiveProducers());
        Assert.Equal(2_999, producer.LastSequence);
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka)]
    [InlineData(BenchClient.DotNet)]
    [InlineData(BenchClient.Wire)]
    public async Task KeyedProduceFillsACompactedTopicCyclingOverTheKeys(BenchClient client)
    {
        // A compacted topic refuses records without keys, so this run fails unless every record carries one.
        var topic = $"bench-keys-smoke-{client}";
        await CreateTopicAsync(topic, 1, new() { ["cleanup.policy"] = "compact" });
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 1, RecordSize: 50, Count: 2_000, Client: client, Keys: 7));
        var result = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal((2_000, 0L), (result.Records, result.Errors));
        Assert.Equal("7", result.Settings["keys"]);

        using var consumer = new ConsumerBuilder<string, Ignore>(new ConsumerConfig
        {
            BootstrapServers = _server.BootstrapServers,
            GroupId = "bench-keys",
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var counts = new Dictionary<string, int>();
        var ended = false;
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(100)); r is not null && !ended; r = ended ? null : consumer.Consume(TimeSpan.FromMilliseconds(100)))
            {
                if (r.IsPartitionEOF) ended = true;
                else counts[r.Message.Key] = counts.GetValueOrDefault(r.Message.Key) + 1;
            }
            return ended;
        }, TimeSpan.FromSeconds(30), $"the end of {topic}", () => $"{counts.Values.Sum()} records read");
        Assert.Equal(Enumerable.Range(0, 7).Select(k => $"k{k:D11}"), counts.Keys.Order());
        Assert.Equal(2_000, counts.Values.Sum());
        Assert.All(counts.Values, n => Assert.InRange(n, 2_000 / 7, 2_000 / 7 + 1));
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka)]
    [InlineData(BenchClient.DotNet)]
    [InlineData(BenchClient.Wire)]
    public async Task ARateHoldsTheProducersToTheSchedule(BenchClient client)
    {
        // 3,000 records at 10,000 a second cannot be sent in less than 0.3 s, however fast the machine: a lower bound
        // only, so the test does not depend on how busy the machine is.
        var topic = $"bench-rate-{client}";
        await CreateTopicAsync(topic, 2);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 2, Count: 3_000, Producers: 2, Client: client, Rate: 10_000));
        var result = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal((3_000, 0L), (result.Records, result.Errors));
        Assert.Equal("10000", result.Settings["rate"]);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.3), $"3,000 records at 10,000/s took {clock.Elapsed.TotalSeconds:0.000} s");
    }

    [Fact]
    public async Task TheWireProducerEndsTheRunWithTheBrokersErrorInsteadOfRetryingOrHanging()
    {
        // A compacted topic refuses keyless records (INVALID_RECORD): the run must stop and say so.
        const string topic = "bench-wire-refused";
        await CreateTopicAsync(topic, 1, new() { ["cleanup.policy"] = "compact" });
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 1, Count: 1_000_000, Client: BenchClient.Wire, BatchBytes: 16_384));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => produce.RunAsync(null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"produce to {topic}-0 failed: InvalidRecord", error.Message);
        Assert.Equal(0, _server.State.Topics.GetPartition(topic, 0)!.HighWatermark);
    }

    [Theory]
    [InlineData(BenchClient.Librdkafka)]
    [InlineData(BenchClient.Wire)]
    public async Task TransactionalProduceCommitsEveryRecord(BenchClient client)
    {
        var topic = $"bench-txn-smoke-{client}";
        await CreateTopicAsync(topic, 2);
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions(topic, 2, Count: 20_000, TransactionalCommitMs: 10, Client: client, BatchBytes: 65_536));
        var result = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal(20_000, result.Records);
        Assert.Equal(0, result.Errors);
        Assert.True(long.Parse(result.Settings["transactions.committed"]) >= 1, result.ToJson());
        // Every transaction was committed: nothing holds back the last stable offset, and a read_committed reader
        // sees all 20,000 records.
        for (var p = 0; p < 2; p++)
        {
            var log = _server.State.Topics.GetPartition(topic, p)!;
            Assert.Equal(log.HighWatermark, log.LastStableOffset);
        }
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = _server.BootstrapServers,
            GroupId = "bench-txn",
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning), new TopicPartitionOffset(topic, 1, Offset.Beginning)]);
        var (read, ends) = (0, new HashSet<int>());
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(100)); r is not null && ends.Count < 2; r = ends.Count < 2 ? consumer.Consume(TimeSpan.FromMilliseconds(100)) : null)
            {
                if (r.IsPartitionEOF) ends.Add(r.Partition.Value);
                else read++;
            }
            return ends.Count == 2;
        }, TimeSpan.FromSeconds(30), $"the end of both partitions of {topic}", () => $"{ends.Count} ended, {read} records");
        Assert.Equal(20_000, read);
    }

    [Fact]
    public async Task RebalanceTimesTheLastMembersJoinUntilTheGroupIsBalanced()
    {
        await CreateTopicAsync("bench-rebalance-smoke", 6);
        var rebalance = new RebalanceBenchmark(new ConsumerConfig { BootstrapServers = _server.BootstrapServers },
            new RebalanceBenchOptions("bench-rebalance-smoke", 6, Members: 3, Runs: 2, HeartbeatIntervalMs: 500, Timeout: TimeSpan.FromSeconds(60)));
        var result = await rebalance.RunAsync(null, CancellationToken.None);
        var runs = result.Settings["runs (ms)"].Split(' ').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, runs.Count);
        // A member learns of the rebalance at its next heartbeat: the join cannot complete in no time, nor take a minute.
        Assert.All(runs, ms => Assert.InRange(ms, 1, 60_000));
        Assert.Equal(runs.Max(), double.Parse(result.Settings["max (ms)"], CultureInfo.InvariantCulture));
    }
}
