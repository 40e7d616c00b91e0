using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Issue 20 #1: a malformed snappy batch in a topic, then cleanup.policy=compact on it. The cleaner used to throw on
/// it from its thread and abort the process, at every restart again. Now the partition is marked uncleanable and
/// every other compacted topic, __consumer_offsets included, is still compacted; the process stays up across restarts.
/// </summary>
[Trait("Category", "Slow")]
public sealed class PoisonBatchCleanerTests(ITestOutputHelper output)
{
    private const string Poisoned = "poisoned";
    private const string Healthy = "healthy";
    private const string Group = "poison-test-group";
    private const string Uncleanable = "marked uncleanable";

    private static readonly Dictionary<string, string> Settings = new()
    {
        ["log.cleaner.backoff.ms"] = "100",
        ["log.retention.check.interval.ms"] = "100",
        ["schema.registry.listeners"] = "http://127.0.0.1:0",
    };

    private static readonly Dictionary<string, string> Compacting = new()
    {
        ["segment.bytes"] = "4096",
        ["min.cleanable.dirty.ratio"] = "0.01",
    };

    [Fact]
    public async Task A_poison_batch_leaves_the_process_up_and_every_other_compacted_topic_compacted_across_restarts()
    {
        var cli = await ServeProcess.LocateCliAsync();
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-poison-" + Guid.NewGuid().ToString("N"));
        var port = ServeProcess.FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        try
        {
            long next;
            using (var serve = await ServeProcess.StartAsync(cli, dataDir, port, output, Settings))
            {
                using var admin = Admin(bootstrap);
                await admin.CreateTopicsAsync([new TopicSpecification { Name = Poisoned, NumPartitions = 1, ReplicationFactor = 1, Configs = new(Compacting) }]);
                next = await ProduceKeyedAsync(bootstrap, Poisoned, 200);
                serve.Kill();
            }

            // Below append validation, as old data or another tool leaves it: the segment is written directly.
            PoisonBatch.AppendTo(Directory.GetDirectories(dataDir, $"{Poisoned}-0", SearchOption.AllDirectories).Single(), next);

            using (var serve = await ServeProcess.StartAsync(cli, dataDir, port, output, Settings))
            {
                using var admin = Admin(bootstrap);
                await admin.CreateTopicsAsync([new TopicSpecification { Name = Healthy, NumPartitions = 1, ReplicationFactor = 1, Configs = new(Compacting) { ["cleanup.policy"] = "compact" } }]);
                await ProduceKeyedAsync(bootstrap, Poisoned, 200);
                await ProduceKeyedAsync(bootstrap, Healthy, 600);
                CommitManyTimes(bootstrap, 1); // creates __consumer_offsets, so it can be configured
                await admin.IncrementalAlterConfigsAsync(Alter("__consumer_offsets", Compacting));
                CommitManyTimes(bootstrap, 300);
                await admin.IncrementalAlterConfigsAsync(Alter(Poisoned, new() { ["cleanup.policy"] = "compact" }));

                await Eventually.TrueAsync(() =>
                {
                    Assert.False(serve.HasExited, "the broker died");
                    return Count(serve, Uncleanable) == 1 && CountRecords(bootstrap, Healthy) < 300 && CountRecords(bootstrap, "__consumer_offsets") < 150;
                }, TimeSpan.FromSeconds(60), "the poisoned partition marked and the others compacted",
                    () => $"uncleanable lines {Count(serve, Uncleanable)}, {Healthy} {CountRecords(bootstrap, Healthy)} records, __consumer_offsets {CountRecords(bootstrap, "__consumer_offsets")}");

                // Rounds go on (backoff 100 ms) and the poisoned partition is not tried again: no retry storm.
                await ProduceKeyedAsync(bootstrap, Healthy, 600);
                await Eventually.TrueAsync(() => CountRecords(bootstrap, Healthy) < 600, TimeSpan.FromSeconds(60), "the healthy topic to be compacted again",
                    () => $"{CountRecords(bootstrap, Healthy)} records");
                Assert.False(serve.HasExited);
                Assert.Equal(1, Count(serve, Uncleanable));
                Assert.Equal(0, Count(serve, "log cleaner: ") - Count(serve, Uncleanable) - Count(serve, "log cleaner: cleaned"));
                serve.Kill();
            }

            // A restart tries the partition once more, marks it again and stays up; groups kept their offsets.
            using (var serve = await ServeProcess.StartAsync(cli, dataDir, port, output, Settings))
            {
                await Eventually.TrueAsync(() =>
                {
                    Assert.False(serve.HasExited, "the restarted broker died");
                    return Count(serve, Uncleanable) > 0;
                }, TimeSpan.FromSeconds(60), "the restarted cleaner to reach the poisoned partition");
                Assert.Equal(300, Committed(bootstrap));
                await ProduceKeyedAsync(bootstrap, Healthy, 1);
                Assert.False(serve.HasExited);
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

    private static IAdminClient Admin(string bootstrap) => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();

    private static ConfigResource TopicResource(string name) => new() { Type = ResourceType.Topic, Name = name };

    private static Dictionary<ConfigResource, List<ConfigEntry>> Alter(string topic, Dictionary<string, string> configs) =>
        new() { [TopicResource(topic)] = [.. configs.Select(c => new ConfigEntry { Name = c.Key, Value = c.Value, IncrementalOperation = AlterConfigOpType.Set })] };

    private static int Count(ServeProcess serve, string text) => serve.Lines.Count(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>Produces keyed records over 20 keys, uncompressed; returns the offset after the last.</summary>
    private static async Task<long> ProduceKeyedAsync(string bootstrap, string topic, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 1 }).Build();
        DeliveryResult<string, string>? last = null;
        for (int i = 0; i < count; i++)
        {
            last = await producer.ProduceAsync(topic, new Message<string, string> { Key = $"key-{i % 20}", Value = $"value-{i}-{new string('v', 40)}" });
        }
        return last!.Offset.Value + 1;
    }

    /// <summary>Commits offsets 1..<paramref name="times"/> for the group, one commit each.</summary>
    private static void CommitManyTimes(string bootstrap, int times)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = Group, EnableAutoCommit = false }).Build();
        for (int i = 1; i <= times; i++)
        {
            consumer.Commit([new TopicPartitionOffset(Healthy, 0, i)]);
        }
    }

    private static long Committed(string bootstrap)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = Group, EnableAutoCommit = false }).Build();
        return consumer.Committed([new TopicPartition(Healthy, 0)], TimeSpan.FromSeconds(10)).Single().Offset.Value;
    }

    /// <summary>Records a consumer reads from the start of every partition of the topic to its end.</summary>
    private static int CountRecords(string bootstrap, string topic)
    {
        using var admin = Admin(bootstrap);
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Count;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "poison-test-reader",
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        int records = 0, ended = 0;
        Eventually.True(() =>
        {
            for (var result = consumer.Consume(TimeSpan.FromMilliseconds(500)); result is not null && ended < partitions; result = ended < partitions ? consumer.Consume(TimeSpan.FromMilliseconds(500)) : null)
            {
                if (result.IsPartitionEOF) ended++;
                else records++;
            }
            return ended == partitions;
        }, TimeSpan.FromSeconds(30), $"the end of every partition of {topic}", () => $"{ended} of {partitions} ended, {records} records");
        return records;
    }
}
