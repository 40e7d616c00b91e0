using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests;

/// <summary>
/// DescribeTopicPartitions v0 (KIP-966) over the raw protocol, on one broker: pages of at most
/// response_partition_limit partitions with a cursor to the next, Kafka's errors for unknown topics and bad cursors,
/// and the advertisement in ApiVersions (with ElectLeaders).
/// </summary>
public sealed class DescribeTopicPartitionsTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static DescribeTopicPartitionsRequest Request(int limit, DescribeTopicPartitionsRequest.CursorData? cursor, params string[] topics) =>
        new() { Topics = [.. topics.Select(t => new DescribeTopicPartitionsRequest.TopicRequest { Name = t })], ResponsePartitionLimit = limit, Cursor = cursor };

    private static string Page(DescribeTopicPartitionsResponse response) =>
        string.Join(" ", response.Topics.SelectMany(t => t.Partitions.Select(p => $"{t.Name}-{p.PartitionIndex}")))
        + (response.NextCursor is { } c ? $" | {c.TopicName}-{c.PartitionIndex}" : " | end");

    [Fact]
    public async Task PagesFollowTheCursorInTopicNameOrder()
    {
        using (var admin = broker.Admin())
            await admin.CreateTopicsAsync([
                new TopicSpecification { Name = "dtp-c", NumPartitions = 1, ReplicationFactor = 1 },
                new TopicSpecification { Name = "dtp-a", NumPartitions = 3, ReplicationFactor = 1 },
                new TopicSpecification { Name = "dtp-b", NumPartitions = 2, ReplicationFactor = 1 },
            ]);
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        string[] topics = ["dtp-c", "dtp-b", "dtp-a", "dtp-a"]; // any order, duplicates ignored
        var pages = new List<string>();
        DescribeTopicPartitionsRequest.CursorData? cursor = null;
        do
        {
            var response = await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(2, cursor, topics), 0);
            pages.Add(Page(response));
            cursor = response.NextCursor is { } next ? new() { TopicName = next.TopicName, PartitionIndex = next.PartitionIndex } : null;
        }
        while (cursor is not null && pages.Count < 10);
        Assert.Equal(["dtp-a-0 dtp-a-1 | dtp-a-2", "dtp-a-2 dtp-b-0 | dtp-b-1", "dtp-b-1 dtp-c-0 | end"], pages);

        // A page that ends exactly at a topic's end points at the next topic's first partition.
        var exact = await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(3, null, topics), 0);
        Assert.Equal("dtp-a-0 dtp-a-1 dtp-a-2 | dtp-b-0", Page(exact));

        // A limit below 1 is taken as 1; the default (2000) holds everything.
        Assert.Equal("dtp-a-0 | dtp-a-1", Page(await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(0, null, topics), 0)));
        var whole = await raw.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest { Topics = [new() { Name = "dtp-a" }] }, 0);
        var topic = Assert.Single(whole.Topics);
        Assert.Null(whole.NextCursor);
        Assert.Equal((short)0, topic.ErrorCode);
        Assert.Equal(broker.Server.State.Topics.Get("dtp-a")!.Id, topic.TopicId);
        Assert.False(topic.IsInternal);
        Assert.Equal(Tributary.Broker.Security.Authorizer.BitField(Tributary.Broker.Security.Authorizer.SupportedOperations(Tributary.Broker.Security.AclResourceType.Topic)), topic.TopicAuthorizedOperations);
        Assert.All(topic.Partitions, p =>
        {
            Assert.Equal(broker.Server.State.NodeId, p.LeaderId);
            Assert.Equal([broker.Server.State.NodeId], p.ReplicaNodes);
            Assert.Equal([broker.Server.State.NodeId], p.IsrNodes);
            Assert.Empty(p.OfflineReplicas);
            Assert.Empty(p.EligibleLeaderReplicas!); // no ELR: empty, as Kafka with it off
            Assert.Empty(p.LastKnownElr!);
        });

        // No topic named: every topic, from the cursor's on.
        var rest = await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(2000, new() { TopicName = "dtp-b", PartitionIndex = 1 }), 0);
        Assert.StartsWith("dtp-b-1 dtp-c-0", Page(rest), StringComparison.Ordinal);
        Assert.DoesNotContain(rest.Topics, t => t.Name == "dtp-a");
    }

    [Fact]
    public async Task UnknownTopicsAndBadCursorsAreAnsweredAsKafkaAnswersThem()
    {
        await broker.CreateTopicAsync("dtp-known", 2);
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var response = await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(2000, null, "dtp-known", "dtp-missing", "bad/name", ""), 0);
        var byName = response.Topics.ToDictionary(t => t.Name!);
        Assert.Equal((short)ErrorCode.InvalidTopicException, byName["bad/name"].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTopicException, byName[""].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, byName["dtp-missing"].ErrorCode);
        Assert.Equal(Guid.Empty, byName["dtp-missing"].TopicId);
        Assert.Empty(byName["dtp-missing"].Partitions);
        Assert.Equal(2, byName["dtp-known"].Partitions.Count);

        // The cursor's topic must be among those named, and its partition not negative: INVALID_REQUEST on every topic.
        foreach (var cursor in new DescribeTopicPartitionsRequest.CursorData[] { new() { TopicName = "dtp-other", PartitionIndex = 0 }, new() { TopicName = "dtp-known", PartitionIndex = -1 } })
        {
            var refused = await raw.SendAsync<DescribeTopicPartitionsResponse>(Request(2000, cursor, "dtp-known", "dtp-missing"), 0);
            Assert.Equal(2, refused.Topics.Count);
            Assert.All(refused.Topics, t => Assert.Equal((short)ErrorCode.InvalidRequest, t.ErrorCode));
        }
    }

    [Fact]
    public async Task ApiVersionsAdvertisesDescribeTopicPartitionsAndElectLeaders()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var versions = await raw.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 3);
        var dtp = Assert.Single(versions.ApiKeys, k => k.ApiKey == (short)ApiKey.DescribeTopicPartitions);
        Assert.Equal((0, 0), (dtp.MinVersion, dtp.MaxVersion));
        var elect = Assert.Single(versions.ApiKeys, k => k.ApiKey == (short)ApiKey.ElectLeaders);
        Assert.Equal((0, 2), (elect.MinVersion, elect.MaxVersion));
    }

    [Fact]
    public async Task ElectLeadersOnABrokerAloneFindsNothingToDoAndRefusesAnUnknownType()
    {
        await broker.CreateTopicAsync("dtp-elect", 2);
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new ElectLeadersRequest { ElectionType = 0, TopicPartitions = [new() { Topic = "dtp-elect", Partitions = [0, 1, 5] }] };
        var response = await raw.SendAsync<ElectLeadersResponse>(request, 2);
        Assert.Equal((short)0, response.ErrorCode);
        var results = Assert.Single(response.ReplicaElectionResults).PartitionResult;
        Assert.Equal([84, 84, 3], results.Select(r => (int)r.ErrorCode));
        Assert.Equal("Leader election not needed for topic partition.", results[0].ErrorMessage);
        Assert.Equal("No such partition as dtp-elect-5", results[2].ErrorMessage);

        // v0 (no election type field) is a preferred election too.
        var v0 = await raw.SendAsync<ElectLeadersResponse>(request, 0);
        Assert.Equal([84, 84, 3], v0.ReplicaElectionResults[0].PartitionResult.Select(r => (int)r.ErrorCode));

        request.ElectionType = 5;
        var refused = await raw.SendAsync<ElectLeadersResponse>(request, 1);
        Assert.Equal((short)ErrorCode.InvalidRequest, refused.ErrorCode);
        Assert.All(refused.ReplicaElectionResults[0].PartitionResult, r => Assert.Equal((short)ErrorCode.InvalidRequest, r.ErrorCode));
    }
}
