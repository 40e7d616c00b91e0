using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Groups;

namespace Tributary.Broker.Tests;

/// <summary>
/// KIP-848 group state (epochs, members, target and current assignments) lives in __consumer_offsets: after a broker
/// restart on the same address the group is there before any member heartbeats, and the running librdkafka consumers
/// carry on with their epochs and partitions, without a rebalance, from their committed offsets.
/// </summary>
public sealed class GroupsConsumerRestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-kip848-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    private Task<TributaryServer> StartAsync(int port)
    {
        var config = new BrokerConfig { DataDir = _dataDir, ListenHost = "127.0.0.1", ListenPort = port };
        foreach (var (name, value) in GroupsFixture.Settings) config.Settings[name] = value;
        config.Settings[TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0";
        config.Settings[TributaryServer.ConsoleListenersSetting] = "";
        config.Settings["log.level"] = "warn";
        return TributaryServer.StartAsync(config);
    }

    private static IConsumer<string, string> Member(string bootstrap, string group) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = group,
            GroupProtocol = GroupProtocol.Consumer,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();

    private static string Describe(Protocol.Messages.ConsumerGroupDescribeResponse.DescribedGroup g) =>
        $"epoch {g.GroupEpoch}/{g.AssignmentEpoch} " + string.Join("; ", g.Members.OrderBy(m => m.MemberId, StringComparer.Ordinal).Select(m =>
            $"{m.MemberId}@{m.MemberEpoch}: {string.Join(",", m.Assignment.TopicPartitions.SelectMany(t => t.Partitions.Select(p => $"{t.TopicName}-{p}")).Order())}"
            + $" -> {string.Join(",", m.TargetAssignment.TopicPartitions.SelectMany(t => t.Partitions.Select(p => $"{t.TopicName}-{p}")).Order())}"));

    [Fact]
    public async Task MembersKeepTheirEpochsAndAssignmentsAcrossABrokerRestart()
    {
        const string topic = "kip848-restart";
        const string group = "kip848-restart-group";
        var server = await StartAsync(0);
        var port = server.Port;
        var bootstrap = server.BootstrapServers;
        var members = new List<IConsumer<string, string>>();
        try
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 6, ReplicationFactor = 1 }]);
            members.AddRange([Member(bootstrap, group), Member(bootstrap, group)]);
            foreach (var m in members) m.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 6) && members.All(m => m.Assignment.Count == 3), "a balanced assignment");
            var stable = await WaitForAsync(server, group, g => g.GroupState == "Stable" && g.Members.Count == 2, "a stable group");
            // Records only now: a commit racing the epoch bumps of the first rebalance would be refused as stale.
            Produce(bootstrap, topic, 6, 0, 60);
            var received = new List<(int Member, int Partition, string Key)>();
            GroupsFixture.PollUntil(members, () => received.Count >= 60, "60 records", (i, r) =>
            {
                received.Add((i, r.Partition.Value, r.Message.Key));
                members[i].Commit(r);
            });
            var before = Describe(stable);
            var owned = members.Select(m => m.Assignment.Select(tp => tp.Partition.Value).Order().ToList()).ToList();

            await server.StopAsync();
            server = await StartAsync(port);
            await server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
            // Rebuilt from the log alone: no member has heartbeated to this broker yet.
            Assert.Equal(before, Describe(await server.Groups.DescribeConsumerGroupAsync(group)));

            // The consumers reconnect and heartbeat with the epochs they had: same partitions, no new group epoch,
            // and consumption resumes at the committed offsets (no record of the first 60 comes again).
            Produce(bootstrap, topic, 6, 60, 60);
            GroupsFixture.PollUntil(members, () => received.Count >= 120, "60 more records", (i, r) =>
            {
                received.Add((i, r.Partition.Value, r.Message.Key));
                members[i].Commit(r);
            });
            Assert.Equal(120, received.Select(r => r.Key).Distinct().Count());
            Assert.Equal(120, received.Count);
            foreach (var (member, partition, _) in received.Skip(60)) Assert.Contains(partition, owned[member]);
            Assert.Equal(owned, members.Select(m => m.Assignment.Select(tp => tp.Partition.Value).Order().ToList()).ToList());
            Assert.Equal(before, Describe(await server.Groups.DescribeConsumerGroupAsync(group)));

            // What `tributary group describe` reads: the group through the admin API, with its members' assignments.
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
            {
                var description = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single();
                Assert.Equal(ConsumerGroupState.Stable, description.State);
                Assert.Equal(members.Select(m => m.MemberId).Order(), description.Members.Select(m => m.ConsumerId).Order());
                Assert.Equal(6, description.Members.Sum(m => m.Assignment.TopicPartitions.Count));
                var offsets = (await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)])).Single().Partitions;
                Assert.Equal(120, offsets.Sum(p => p.Offset.Value));
            }
        }
        finally
        {
            foreach (var m in members)
            {
                m.Close();
                m.Dispose();
            }
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task LeftMembersAndDeletedGroupsStayGoneAfterARestart()
    {
        const string topic = "kip848-gone";
        var server = await StartAsync(0);
        try
        {
            var bootstrap = server.BootstrapServers;
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 4, ReplicationFactor = 1 }]);
            Produce(bootstrap, topic, 4, 0, 8);
            foreach (var group in new[] { "kip848-left", "kip848-deleted" })
            {
                using var member = Member(bootstrap, group);
                member.Subscribe(topic);
                var seen = 0;
                GroupsFixture.PollUntil([member], () => seen >= 8 && member.Assignment.Count == 4, "8 records", (_, r) =>
                {
                    seen++;
                    member.Commit(r);
                });
                member.Close();
            }
            await WaitForAsync(server, "kip848-left", g => g.GroupState == "Empty", "the member to leave");
            await WaitForAsync(server, "kip848-deleted", g => g.GroupState == "Empty", "the member to leave");
            Assert.Equal(Protocol.Messages.ErrorCode.None, await server.Groups.DeleteGroupAsync("kip848-deleted"));
            var left = Describe(await server.Groups.DescribeConsumerGroupAsync("kip848-left"));

            await server.StopAsync();
            server = await StartAsync(0);
            await server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
            var empty = await server.Groups.DescribeConsumerGroupAsync("kip848-left");
            Assert.Equal("Empty", empty.GroupState);
            Assert.Equal(left, Describe(empty));
            var (_, offsets) = await server.Groups.FetchOffsetsAsync("kip848-left", null);
            Assert.Equal(8, offsets.Sum(o => o.Offset!.Offset));
            Assert.Equal((short)Protocol.Messages.ErrorCode.GroupIdNotFound, (await server.Groups.DescribeConsumerGroupAsync("kip848-deleted")).ErrorCode);
            Assert.DoesNotContain(await server.Groups.ListAsync(), g => g.GroupId == "kip848-deleted");
        }
        finally
        {
            await server.StopAsync();
        }
    }

    private static async Task<Protocol.Messages.ConsumerGroupDescribeResponse.DescribedGroup> WaitForAsync(
        TributaryServer server, string group, Func<Protocol.Messages.ConsumerGroupDescribeResponse.DescribedGroup, bool> condition, string what)
        => await Eventually.ValueAsync(() => server.Groups.DescribeConsumerGroupAsync(group), described => described.ErrorCode == 0 && condition(described),
            TimeSpan.FromSeconds(30), what, described => $"error {described.ErrorCode}, state {described.GroupState}");

    private static void Produce(string bootstrap, string topic, int partitions, int from, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 5 }).Build();
        for (var i = from; i < from + count; i++) producer.Produce(new TopicPartition(topic, i % partitions), new Message<string, string> { Key = "k" + i, Value = "v" + i });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }
}
