using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>Committed offsets and group metadata live in __consumer_offsets and come back after a restart.</summary>
public sealed class GroupsRestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-groups-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task OffsetsMetadataAndLeaderEpochsSurviveARestartExactly()
    {
        var expected = new List<(string Group, string Topic, int Partition, long Offset, int Epoch, string Metadata)>();
        for (var i = 0; i < 40; i++) expected.Add(($"group-{i % 7}", $"topic-{i % 3}", i % 5, 1000 + i, i % 4 - 1, i % 2 == 0 ? "" : $"meta é {i}"));

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, GroupsFixture.Settings))
        {
            await server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
            // Commits name existing partitions: Kafka refuses the others (UNKNOWN_TOPIC_OR_PARTITION).
            foreach (var topic in expected.Select(e => e.Topic).Distinct()) server.State.Topics.Create(topic, 5, new Dictionary<string, string>());
            await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
            // Commit each twice (the later value wins), then delete one group and one partition's offset.
            foreach (var pass in new[] { 0, 1 })
            {
                foreach (var e in expected)
                {
                    var response = await raw.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
                    {
                        GroupId = e.Group,
                        Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic
                        {
                            Name = e.Topic,
                            Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition
                            {
                                PartitionIndex = e.Partition, CommittedOffset = e.Offset - (pass == 0 ? 500 : 0),
                                CommittedLeaderEpoch = e.Epoch, CommittedMetadata = e.Metadata,
                            }],
                        }],
                    }, 8);
                    Assert.Equal(0, response.Topics[0].Partitions[0].ErrorCode);
                }
            }
            Assert.Equal(0, (await raw.SendAsync<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = ["group-6"] }, 2)).Results[0].ErrorCode);
            var first = expected.First(e => e.Group == "group-0");
            await raw.SendAsync<OffsetDeleteResponse>(new OffsetDeleteRequest
            {
                GroupId = first.Group,
                Topics = [new OffsetDeleteRequest.OffsetDeleteRequestTopic
                {
                    Name = first.Topic, Partitions = [new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = first.Partition }],
                }],
            }, 0);
            expected.RemoveAll(e => e.Group == "group-6" || (e.Group, e.Topic, e.Partition) == (first.Group, first.Topic, first.Partition));
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, GroupsFixture.Settings))
        {
            await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
            var fetched = await Eventually.ValueAsync(() => raw.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                Groups = [.. Enumerable.Range(0, 7).Select(g => new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = $"group-{g}", Topics = null })],
            }, 8), f => f.Groups.All(g => g.ErrorCode != (short)ErrorCode.CoordinatorLoadInProgress), TimeSpan.FromSeconds(30),
                "the coordinator to finish loading", f => string.Join(", ", f.Groups.Select(g => $"{g.GroupId}: {g.ErrorCode}")));
            var actual = fetched.Groups
                .SelectMany(g => g.Topics.SelectMany(t => t.Partitions.Select(p => (g.GroupId, t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.Metadata ?? ""))))
                .OrderBy(x => x.ToString(), StringComparer.Ordinal).ToList();
            Assert.Equal(expected.OrderBy(x => x.ToString(), StringComparer.Ordinal).ToList(), actual);
        }
    }

    [Fact]
    public async Task AGroupResumesFromItsCommittedOffsetsAfterARestart()
    {
        const string topic = "orders";
        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, GroupsFixture.Settings))
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build())
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 1 }]);
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = server.BootstrapServers }).Build();
            for (var i = 0; i < 90; i++) producer.Produce(new TopicPartition(topic, i % 3), new Message<string, string> { Key = "k" + i, Value = "v" + i });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
            using var consumer = GroupsFixture.Member(server.BootstrapServers, "resume");
            consumer.Subscribe(topic);
            var seen = 0;
            GroupsFixture.PollUntil([consumer], () => seen >= 45, "45 records", (_, r) => { seen++; if (seen <= 45) consumer.Commit(r); });
            consumer.Close();
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, GroupsFixture.Settings))
        {
            using var consumer = GroupsFixture.Member(server.BootstrapServers, "resume");
            consumer.Subscribe(topic);
            var rest = new List<string>();
            GroupsFixture.PollUntil([consumer], () => rest.Count >= 45, "the other 45 records", (_, r) => rest.Add(r.Message.Key));
            var extra = consumer.Consume(TimeSpan.FromMilliseconds(500));
            Assert.True(extra is null || extra.IsPartitionEOF, "a record was delivered twice");
            Assert.Equal(45, rest.Distinct().Count());
            consumer.Close();
        }
    }
}
