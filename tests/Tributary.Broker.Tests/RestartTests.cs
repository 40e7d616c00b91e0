using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

public sealed class RestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-restart-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task TopicsConfigsAndRecordsSurviveARestart()
    {
        Guid topicId;
        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            var fixture = new Harness(server.BootstrapServers);
            using (var admin = fixture.Admin())
            {
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification
                {
                    Name = "durable", NumPartitions = 2, ReplicationFactor = 1,
                    Configs = new() { ["retention.ms"] = "123456789", ["segment.bytes"] = "8192" },
                }]);
            }
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = server.BootstrapServers }).Build();
            for (var i = 0; i < 1000; i++) producer.Produce(new TopicPartition("durable", i % 2), new Message<string, string> { Key = "k" + i, Value = "v" + i });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
            topicId = server.State.Topics.Get("durable")!.Id;
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            Assert.Equal(topicId, server.State.Topics.Get("durable")!.Id);
            var fixture = new Harness(server.BootstrapServers);
            using (var admin = fixture.Admin())
            {
                var configs = await admin.DescribeConfigsAsync([new Confluent.Kafka.Admin.ConfigResource { Type = Confluent.Kafka.Admin.ResourceType.Topic, Name = "durable" }]);
                Assert.Equal("123456789", configs[0].Entries["retention.ms"].Value);
            }
            using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
            {
                BootstrapServers = server.BootstrapServers,
                GroupId = "g",
                EnableAutoCommit = false,
                EnablePartitionEof = true,
            }).Build();
            consumer.Assign([new TopicPartitionOffset("durable", 0, Offset.Beginning), new TopicPartitionOffset("durable", 1, Offset.Beginning)]);
            var seen = new Dictionary<string, (int Partition, long Offset, string Value)>();
            var eofs = 0;
            Eventually.True(() =>
            {
                for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && eofs < 2; r = eofs < 2 ? consumer.Consume(TimeSpan.FromMilliseconds(200)) : null)
                {
                    if (r.IsPartitionEOF) eofs++;
                    else seen[r.Message.Key] = (r.Partition.Value, r.Offset.Value, r.Message.Value);
                }
                return eofs == 2;
            }, TimeSpan.FromSeconds(30), "the end of both partitions", () => $"{eofs} ends, {seen.Count} keys");
            Assert.Equal(1000, seen.Count);
            for (var i = 0; i < 1000; i++)
            {
                var (partition, offset, value) = seen["k" + i];
                Assert.Equal(i % 2, partition);
                Assert.Equal(i / 2, offset);
                Assert.Equal("v" + i, value);
            }
            // And the log keeps going where it stopped.
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = server.BootstrapServers }).Build();
            var report = await producer.ProduceAsync(new TopicPartition("durable", 0), new Message<string, string> { Key = "next", Value = "after restart" });
            Assert.Equal(500, report.Offset.Value);
        }
    }

    private sealed class Harness(string bootstrap)
    {
        public IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
    }
}
