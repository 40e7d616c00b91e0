using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Tributary.Broker.Tests;

/// <summary>Group administration through Confluent's AdminClient, and replay by time as `tributary group seek` does it.</summary>
public sealed class GroupsAdminTests(GroupsFixture fixture) : IClassFixture<GroupsFixture>
{
    private IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = fixture.Bootstrap }).Build();

    [Fact]
    public async Task SeekingAGroupByTimeResumesItAtTheFirstRecordAtOrAfterThatTime()
    {
        var topic = GroupsFixture.Unique("replay");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 2);
        var baseTs = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeMilliseconds();
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = fixture.Bootstrap }).Build())
        {
            // Partition p gets records at baseTs + 10*i (+ p), so a target of baseTs + 505 falls between records.
            for (var i = 0; i < 100; i++)
                for (var p = 0; p < 2; p++)
                    producer.Produce(new TopicPartition(topic, p), new Message<string, string> { Key = $"{p}-{i}", Value = "v", Timestamp = new Timestamp(baseTs + (10 * i) + p, TimestampType.CreateTime) });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }

        using var admin = Admin();
        using (var lookup = fixture.Member(group))
        {
            var target = lookup.OffsetsForTimes([new TopicPartitionTimestamp(topic, 0, new Timestamp(baseTs + 505, TimestampType.CreateTime)),
                new TopicPartitionTimestamp(topic, 1, new Timestamp(baseTs + 505, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
            Assert.Equal([51L, 51L], target.Select(t => t.Offset.Value));
            await admin.AlterConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitionOffsets(group, [.. target.Select(t => new TopicPartitionOffset(t.TopicPartition, t.Offset))])]);
        }

        using var consumer = fixture.Member(group);
        consumer.Subscribe(topic);
        var first = new Dictionary<int, ConsumeResult<string, string>>();
        GroupsFixture.PollUntil([consumer], () => first.Count == 2, "the first record of each partition", (_, r) => first.TryAdd(r.Partition.Value, r));
        Assert.Equal(51, first[0].Offset.Value);
        Assert.Equal(baseTs + 510, first[0].Message.Timestamp.UnixTimestampMs);
        Assert.Equal(51, first[1].Offset.Value);
        Assert.Equal(baseTs + 511, first[1].Message.Timestamp.UnixTimestampMs);
        consumer.Close();
    }

    [Fact]
    public async Task TheAdminClientListsDescribesAndDeletesClassicAndConsumerProtocolGroups()
    {
        var topic = GroupsFixture.Unique("admin");
        var classic = GroupsFixture.Unique("classic");
        var modern = GroupsFixture.Unique("modern");
        await fixture.CreateTopicAsync(topic, 4);
        using var admin = Admin();
        using var a = fixture.Member(classic);
        using var b = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = fixture.Bootstrap,
            GroupId = modern,
            GroupProtocol = GroupProtocol.Consumer,
            EnableAutoCommit = false,
        }).Build();
        a.Subscribe(topic);
        b.Subscribe(topic);
        GroupsFixture.PollUntil([a, b], () => a.Assignment.Count == 4 && b.Assignment.Count == 4, "both groups to own the topic");
        a.Commit([new TopicPartitionOffset(topic, 1, 3)]);

        var listed = (await admin.ListConsumerGroupsAsync()).Valid.ToDictionary(g => g.GroupId);
        Assert.Equal(ConsumerGroupState.Stable, listed[classic].State);
        Assert.Contains(modern, listed.Keys);

        var described = (await admin.DescribeConsumerGroupsAsync([classic, modern])).ConsumerGroupDescriptions.ToDictionary(d => d.GroupId);
        Assert.Equal(4, described[classic].Members.Single().Assignment.TopicPartitions.Count);
        Assert.Equal(4, described[modern].Members.Single().Assignment.TopicPartitions.Count);

        var offsets = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(classic, [new TopicPartition(topic, 1)])]);
        Assert.Equal(3, offsets.Single().Partitions.Single().Offset.Value);

        await Assert.ThrowsAsync<DeleteGroupsException>(() => admin.DeleteGroupsAsync([classic]));
        a.Close();
        b.Close();
        await admin.DeleteGroupsAsync([classic]);
        Assert.DoesNotContain((await admin.ListConsumerGroupsAsync()).Valid, g => g.GroupId == classic);
    }
}
