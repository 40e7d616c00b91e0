using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Xunit.Abstractions;
using static Tributary.Broker.Tests.ServeProcess;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Issue 20 #4: clients that make the broker create partitions until it runs out of descriptors. A `tributary serve`
/// child runs under a lowered `ulimit -n` (far below what the attacks would need at three descriptors per partition);
/// each attack must get clear errors (POLICY_VIOLATION at max.broker.partitions, THROTTLING_QUOTA_EXCEEDED past the
/// controller mutation quota) while the broker stays up, keeps its descriptors under the limit, serves a normal
/// client, and restarts cleanly on the same data directory. Descriptor count, RSS and CPU are written to the output.
/// The quota is lowered to 20 partitions/s (a burst of 220) and the limit to 512 descriptors (64 for segment files), so the attacks still
/// create more partitions than there are descriptors for (three files each) without taking minutes.
/// </summary>
[Trait("Category", "Slow")]
public sealed class DescriptorExhaustionTests(ITestOutputHelper output)
{
    private const int OpenFileLimit = 512;
    private const double MutationRate = 20;
    private const int Burst = 220; // rate x controller.quota.window.num (11) x window size (1 s)
    private static readonly Dictionary<string, string> Settings = new() { ["controller.mutation.rate"] = "20" };
    private static readonly TimeSpan AttackTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public Task One_CreateTopics_with_10000_partitions_is_a_policy_violation() => UnderAttackAsync(async bootstrap =>
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        var request = new CreateTopicsRequest { Topics = [new() { Name = "huge", NumPartitions = 10_000, ReplicationFactor = 1 }] };
        var response = await raw.SendAsync<CreateTopicsResponse>(request, 7, AttackTimeout);
        var result = Assert.Single(response.Topics);
        Assert.Equal((short)ErrorCode.PolicyViolation, result.ErrorCode);
        Assert.Contains("max.broker.partitions=4000", result.ErrorMessage);
    });

    [Fact]
    public Task One_Metadata_request_auto_creating_7000_topics_is_throttled() => UnderAttackAsync(async bootstrap =>
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        var request = new MetadataRequest { Topics = [.. Enumerable.Range(0, 7000).Select(i => new MetadataRequest.MetadataRequestTopic { Name = $"auto-{i}" })], AllowAutoTopicCreation = true };
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        var response = await raw.SendAsync<MetadataResponse>(request, 12, AttackTimeout);
        elapsed.Stop();
        var errors = response.Topics.GroupBy(t => (ErrorCode)t.ErrorCode).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"metadata errors in {elapsed.Elapsed.TotalSeconds:F2} s (throttle {response.ThrottleTimeMs} ms): " + string.Join(", ", errors.Select(e => $"{e.Key}={e.Value}")));
        // The burst, then what the bucket refills while the request is being handled, then refusals.
        Assert.InRange(errors.GetValueOrDefault(ErrorCode.None), Burst, Burst + 1 + (int)(MutationRate * elapsed.Elapsed.TotalSeconds));
        Assert.Equal(7000 - errors.GetValueOrDefault(ErrorCode.None), errors.GetValueOrDefault(ErrorCode.ThrottlingQuotaExceeded));
        Assert.True(response.ThrottleTimeMs > 0);
    });

    [Fact]
    public Task Produce_to_7000_new_topics_is_throttled() => UnderAttackAsync(async bootstrap =>
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        var batch = new RecordBatchBuilder().Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, "x"u8.ToArray()).Build();
        var produced = 0;
        var refused = 0;
        for (var i = 0; i < 7000; i++)
        {
            // What a producer does for a new topic: Metadata (auto-creating it), then Produce.
            var name = $"new-{i}";
            var metadata = await raw.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = name }], AllowAutoTopicCreation = true }, 12, AttackTimeout);
            var topicError = (ErrorCode)Assert.Single(metadata.Topics).ErrorCode;
            if (topicError is ErrorCode.ThrottlingQuotaExceeded or ErrorCode.PolicyViolation) refused++;
            var produce = new ProduceRequest { Acks = 1, TimeoutMs = 10_000, TopicData = [new() { Name = name, PartitionData = [new() { Index = 0, Records = batch }] }] };
            var response = await raw.SendAsync<ProduceResponse>(produce, 9, AttackTimeout);
            var error = (ErrorCode)Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
            if (error == ErrorCode.None) produced++;
            else Assert.Equal(ErrorCode.UnknownTopicOrPartition, error);
        }
        output.WriteLine($"produced to {produced} new topics, {refused} creations refused");
        Assert.InRange(produced, Burst, 4000);
        Assert.True(refused > 0, "no creation was refused");
        Assert.Equal(7000 - produced, refused);
    });

    /// <summary>Runs <paramref name="attack"/> against a child broker under the lowered limit, then the checks every attack must pass.</summary>
    private async Task UnderAttackAsync(Func<string, Task> attack)
    {
        var cli = await LocateCliAsync();
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-fd-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        try
        {
            using (var serve = await ServeProcess.StartAsync(cli, dataDir, port, output, Settings, openFileLimit: OpenFileLimit))
            {
                await CreateTopicAsync(bootstrap, "normal");
                Report("before the attack", serve);
                await attack(bootstrap);
                Assert.False(serve.HasExited, "the broker died under the attack");
                var descriptors = Report("after the attack", serve);
                Assert.True(descriptors < OpenFileLimit, $"{descriptors} descriptors open of {OpenFileLimit}");
                await RoundTripAsync(bootstrap, "normal", "during");
                serve.Kill();
            }

            using (var restarted = await ServeProcess.StartAsync(cli, dataDir, port, output, Settings, openFileLimit: OpenFileLimit))
            {
                Report("after the restart", restarted);
                await RoundTripAsync(bootstrap, "normal", "after restart");
                Assert.False(restarted.HasExited);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private int Report(string when, ServeProcess serve)
    {
        var descriptors = Directory.GetFiles($"/proc/{serve.Pid}/fd").Length;
        var rssKb = File.ReadLines($"/proc/{serve.Pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var stat = File.ReadAllText($"/proc/{serve.Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var cpuSeconds = (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0; // utime + stime, in clock ticks of 10 ms
        output.WriteLine($"{when}: {descriptors} descriptors, RSS {int.Parse(rssKb) / 1024} MiB, CPU {cpuSeconds:F1} s");
        return descriptors;
    }

    private static async Task CreateTopicAsync(string bootstrap, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap, ClientId = "normal-admin" }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
    }

    /// <summary>A normal client's produce and consume of one record, within a bound.</summary>
    private static async Task RoundTripAsync(string bootstrap, string topic, string value)
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap, ClientId = "normal", MessageTimeoutMs = 15_000 }).Build();
        var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = value });
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "normal-" + Guid.NewGuid().ToString("N"), AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false }).Build();
        consumer.Assign(delivered.TopicPartitionOffset);
        var record = consumer.Consume(TimeSpan.FromSeconds(15));
        Assert.NotNull(record);
        Assert.Equal(value, record.Message.Value);
    }
}
