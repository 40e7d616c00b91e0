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
public sealed class BenchSmokeTests : IAsyncLifetime
{
    private TributaryServer _server = null!;

    public async Task InitializeAsync()
    {
        NativeLibrdkafka.EnsureLoaded();
        _server = await TributaryServer.StartEphemeralAsync();
    }

    public async Task DisposeAsync() => await _server.StopAsync();

    private async Task CreateTopicAsync(string name, int partitions)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }]);
    }

    [Fact]
    public async Task ProduceThenConsumeCountsEveryRecord()
    {
        await CreateTopicAsync("bench-smoke", 3);
        var produce = new ProduceBenchmark(new ProducerConfig { BootstrapServers = _server.BootstrapServers },
            new ProduceBenchOptions("bench-smoke", 3, RecordSize: 100, Count: 5_000, Producers: 2));
        var produced = await produce.RunAsync(null, CancellationToken.None);
        Assert.Equal(5_000, produced.Records);
        Assert.Equal(0, produced.Errors);
        Assert.NotNull(produced.Latency);
        Assert.Equal(5_000, produced.Latency!.Samples);
        Assert.True(produced.Latency.P50Ms <= produced.Latency.P99Ms && produced.Latency.P99Ms <= produced.Latency.MaxMs);
        Assert.Contains("\"records\": 5000", produced.ToJson());

        var consume = new ConsumeBenchmark(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = "bench" },
            new ConsumeBenchOptions("bench-smoke", 3, Consumers: 2));
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
}
