using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Server;
using Tributary.Testing;

namespace Tributary.Broker.Tests;

/// <summary>
/// Brokers on one etcd (a child process): registration, the controller, topics spread over brokers and served by their
/// leaders, leadership that follows brokers going and coming, and the cluster id guard. Real Confluent.Kafka clients.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterMetadataTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly Dictionary<string, string> Settings = new() { ["broker.session.timeout.ms"] = "6000", ["schema.registry.enable"] = "false" };

    private static IAdminClient Admin(string bootstrap) => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();

    [Fact]
    public async Task ThreeBrokersRegisterElectOneControllerAndAgreeOnTheClusterId()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        var ids = new HashSet<string>();
        var controllers = new HashSet<int>();
        foreach (var broker in cluster.Brokers)
        {
            using var admin = Admin(broker.BootstrapServers);
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.Equal([1, 2, 3], metadata.Brokers.Select(b => b.BrokerId).Order());
            var described = await Eventually.ValueAsync(() => admin.DescribeClusterAsync(), d => d.Controller is not null, Timeout, "a controller", d => d.Controller?.Id);
            ids.Add(described.ClusterId);
            controllers.Add(described.Controller!.Id);
            Assert.Equal(3, described.Nodes.Count);
        }
        Assert.Single(ids);
        Assert.Single(controllers);
        Assert.Contains(controllers.Single(), new[] { 1, 2, 3 });
        // Every broker keeps the cluster's id in its data directory, as Kafka's meta.properties.
        Assert.All(cluster.Brokers, b => Assert.Equal(ids.Single(), ClusterIdentity.StoredClusterId(b.DataDir)));
    }

    [Fact]
    public async Task ATopicIsSpreadOverTheBrokersAndEachPartitionIsServedByItsLeader()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        using (var admin = Admin(cluster.Broker(1)!.BootstrapServers))
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "spread", NumPartitions = 6, ReplicationFactor = 1 }]);
        // Every broker's image holds the topic, and each partition's log lives on its leader only.
        foreach (var broker in cluster.Brokers)
            await Eventually.TrueAsync(() => broker.State.Topics.Get("spread") is not null, Timeout, $"broker {broker.State.NodeId} sees the topic");
        var topic = cluster.Broker(1)!.State.Topics.Get("spread")!;
        Assert.True(topic.Partitions.Select(p => p.Leader).Distinct().Count() >= 2, "partitions spread over brokers");
        for (var p = 0; p < 6; p++)
            foreach (var broker in cluster.Brokers)
                Assert.Equal(topic.Partitions[p].Leader == broker.State.NodeId, broker.State.Topics.GetPartition("spread", p) is not null);

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, Acks = Acks.All }).Build())
            for (var i = 0; i < 60; i++)
                await producer.ProduceAsync(new TopicPartition("spread", i % 6), new Message<string, string> { Key = "k" + i, Value = "v" + i });

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.Broker(3)!.BootstrapServers,
            GroupId = "spread-readers",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Subscribe("spread");
        var seen = new HashSet<string>();
        await Eventually.TrueAsync(() =>
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) seen.Add(r.Message.Value);
            return seen.Count == 60;
        }, Timeout, "all 60 records consumed through a group", () => seen.Count);
        consumer.Commit();

        // The group's coordinator is the leader of its __consumer_offsets partition, and the offsets stay there.
        using var again = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = cluster.Broker(2)!.BootstrapServers, GroupId = "spread-readers" }).Build();
        var committed = again.Committed([.. Enumerable.Range(0, 6).Select(p => new TopicPartition("spread", p))], TimeSpan.FromSeconds(10));
        Assert.Equal(60, committed.Sum(c => c.Offset.Value));
    }

    [Fact]
    public async Task ReplicationFactorsAndAssignmentsAreCheckedAsKafkaChecksThem()
    {
        await using var cluster = await TributaryCluster.StartAsync(2, Settings);
        using var admin = Admin(cluster.BootstrapServers);
        // Asking for more replicas than brokers is Kafka's refusal, with Kafka's words.
        var e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = "many", NumPartitions = 1, ReplicationFactor = 3 }]));
        Assert.Equal(ErrorCode.InvalidReplicationFactor, e.Results[0].Error.Code);
        Assert.Contains("only 2 broker(s) are registered", e.Results[0].Error.Reason);
        // A manual assignment naming a broker that is not registered, or one broker twice, is INVALID_REPLICA_ASSIGNMENT.
        e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
            [new TopicSpecification { Name = "placed", NumPartitions = 2, ReplicationFactor = -1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [2], [1] = [7] } }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, e.Results[0].Error.Code);
        e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
            [new TopicSpecification { Name = "placed", NumPartitions = 1, ReplicationFactor = -1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [2, 2] } }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, e.Results[0].Error.Code);
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "placed", NumPartitions = 2, ReplicationFactor = -1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [2, 1], [1] = [1, 2] } }]);
        // Created through whichever broker the admin client chose: broker 1 sees it once its watch delivers it.
        await Eventually.TrueAsync(() => cluster.Broker(1)!.State.Topics.Get("placed") is not null, Timeout, "broker 1 sees the topic");
        var placed = cluster.Broker(1)!.State.Topics.Get("placed")!;
        Assert.Equal([2, 1], placed.Partitions.Select(p => p.Leader));
        Assert.All(placed.Partitions, p => Assert.Equal(2, p.Isr.Length));
    }

    [Fact]
    public async Task WhenABrokerStopsItsPartitionsLoseTheirLeaderAndAnotherBrokerControlsUntilItReturns()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        using (var admin = Admin(cluster.BootstrapServers))
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "moving", NumPartitions = 3, ReplicationFactor = -1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [1], [1] = [2], [2] = [3] } }]);
        var controller = await Eventually.ValueAsync(() => cluster.Broker(1)!.State.Topics.Image.ControllerId, c => c > 0, Timeout, "a controller");
        var victim = controller; // the controller itself goes: its successor must still move leadership
        var victimPartition = victim - 1;
        await cluster.StopBrokerAsync(victim);
        var survivor = cluster.Brokers[0];
        var state = await Eventually.ValueAsync(() => survivor.State.Topics.Image,
            i => i.ControllerId > 0 && i.ControllerId != victim && i.Partition("moving", victimPartition)!.Leader == -1, Timeout,
            "a new controller and no leader for the stopped broker's partition", i => (i.ControllerId, i.Partition("moving", victimPartition)));
        var orphan = state.Partition("moving", victimPartition)!;
        Assert.Equal([victim], orphan.Isr); // the last in-sync replica stays, so nothing acknowledged is lost
        Assert.Equal(1, orphan.LeaderEpoch);

        // Clients are told there is no leader (and produce to it fails) while the other partitions go on.
        using (var admin = Admin(survivor.BootstrapServers))
        {
            var meta = admin.GetMetadata("moving", TimeSpan.FromSeconds(10)).Topics[0];
            Assert.Equal(-1, meta.Partitions.Single(p => p.PartitionId == victimPartition).Leader);
            Assert.Equal(ErrorCode.LeaderNotAvailable, meta.Partitions.Single(p => p.PartitionId == victimPartition).Error.Code);
        }

        await cluster.StartBrokerAsync(victim);
        var back = await Eventually.ValueAsync(() => survivor.State.Topics.Image.Partition("moving", victimPartition)!, s => s.Leader == victim, Timeout,
            "the returning broker leads its partition again", s => s);
        Assert.Equal(2, back.LeaderEpoch);
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, Acks = Acks.All }).Build();
        var result = await producer.ProduceAsync(new TopicPartition("moving", victimPartition), new Message<Null, string> { Value = "after return" });
        Assert.Equal(PersistenceStatus.Persisted, result.Status);
    }

    [Fact]
    public async Task ANonLeaderNamesTheLeaderAndItsEndpointInItsAnswer()
    {
        await using var cluster = await TributaryCluster.StartAsync(2, Settings);
        using (var admin = Admin(cluster.BootstrapServers))
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "hinted", NumPartitions = 1, ReplicationFactor = -1, ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [2] } }]);
        await Eventually.TrueAsync(() => cluster.Broker(1)!.State.Topics.Get("hinted") is not null, Timeout, "broker 1 sees the topic");
        var wrong = cluster.Broker(1)!;
        await using var channel = await Replication.BrokerChannel.ConnectAsync("127.0.0.1", wrong.Port, "kip-951-test", null, CancellationToken.None);
        var produce = new Protocol.Messages.ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = "hinted", PartitionData = [new() { Index = 0, Records = new Protocol.Records.RecordBatchBuilder().Add(0, "v"u8).Build() }] }],
        };
        var produced = await channel.SendAsync<Protocol.Messages.ProduceResponse>(produce, 10, CancellationToken.None);
        var answer = produced.Responses[0].PartitionResponses[0];
        Assert.Equal((short)Protocol.Messages.ErrorCode.NotLeaderOrFollower, answer.ErrorCode);
        Assert.Equal(2, answer.CurrentLeader!.LeaderId);
        Assert.Equal(cluster.Broker(2)!.Port, Assert.Single(produced.NodeEndpoints).Port);

        var fetch = new Protocol.Messages.FetchRequest
        {
            MaxWaitMs = 0,
            Topics = [new() { TopicId = wrong.State.Topics.Get("hinted")!.Id, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 }] }],
        };
        var fetched = await channel.SendAsync<Protocol.Messages.FetchResponse>(fetch, 16, CancellationToken.None);
        var data = fetched.Responses[0].Partitions[0];
        Assert.Equal((short)Protocol.Messages.ErrorCode.NotLeaderOrFollower, data.ErrorCode);
        Assert.Equal(2, data.CurrentLeader!.LeaderId);
        Assert.Equal(2, Assert.Single(fetched.NodeEndpoints).NodeId);
    }

    [Fact]
    public async Task ABrokerWhoseDataBelongsToAnotherClusterRefusesToStart()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        var dir = Path.Combine(Path.GetTempPath(), "tributary-other-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var settings = new Dictionary<string, string>(Settings) { ["metadata.store"] = etcd.StoreSetting, ["node.id"] = "1" };
            await using (await TributaryServer.StartEphemeralAsync(dir, settings))
            {
            }
            var otherDir = Path.Combine(dir, "other");
            Directory.CreateDirectory(otherDir);
            ClusterIdentity.LoadOrCreate(otherDir, 2); // a directory of a different (new) cluster
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TributaryServer.StartEphemeralAsync(otherDir,
                new Dictionary<string, string>(settings) { ["node.id"] = "2" }));
            Assert.Contains("belongs to cluster", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TheControllerElectsFromTheLiveIsrInReplicaOrderAndKeepsTheLastMember()
    {
        var state = new PartitionState([1, 2, 3], [1, 2, 3], 1, 4, 9);
        var next = ClusterController.Decide(state, new HashSet<int> { 2, 3 }, unclean: false)!;
        Assert.Equal((2, 5, 10), (next.Leader, next.LeaderEpoch, next.PartitionEpoch));
        Assert.Equal([2, 3], next.Isr);
        // A dead follower only leaves the ISR.
        next = ClusterController.Decide(state, new HashSet<int> { 1, 2 }, unclean: false)!;
        Assert.Equal((1, 4, 10), (next.Leader, next.LeaderEpoch, next.PartitionEpoch));
        Assert.Equal([1, 2], next.Isr);
        // Nobody in sync is alive: no leader, the ISR kept; with unclean election an out-of-sync replica leads.
        var lonely = new PartitionState([1, 2], [1], 1, 0, 0);
        next = ClusterController.Decide(lonely, new HashSet<int> { 2 }, unclean: false)!;
        Assert.Equal((-1, 1), (next.Leader, next.LeaderEpoch));
        Assert.Equal([1], next.Isr);
        Assert.Null(ClusterController.Decide(next, new HashSet<int> { 2 }, unclean: false));
        var unclean = ClusterController.Decide(lonely, new HashSet<int> { 2 }, unclean: true)!;
        Assert.Equal(2, unclean.Leader);
        Assert.Equal([2], unclean.Isr);
        // Healthy: nothing to do.
        Assert.Null(ClusterController.Decide(state, new HashSet<int> { 1, 2, 3 }, unclean: false));
    }

    [Fact]
    public async Task ARegistrationAdvertisesTheRegistryUrlAndOneWithoutItStillReads()
    {
        await using var cluster = await TributaryCluster.StartAsync(1, new Dictionary<string, string>(Settings) { ["schema.registry.enable"] = "true" });
        var broker = cluster.Broker(1)!;
        Assert.NotNull(broker.SchemaRegistryAdvertisedUrl);
        Assert.Equal(broker.SchemaRegistryAdvertisedUrl, broker.State.Topics.Image.Brokers[1].SchemaRegistryUrl);

        // A registration as brokers before this field wrote it (no schemaRegistry property) is read, with no URL.
        var key = $"/tributary/{broker.State.Identity.ClusterId}/brokers/9";
        var old = """{"host":"old-host","port":9099,"rack":null,"incarnation":"00000000-0000-0000-0000-000000000009","shuttingDown":false}""";
        var put = new System.Diagnostics.ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--endpoints", $"127.0.0.1:{cluster.Etcd.ClientPort}", "put", key, old }) put.ArgumentList.Add(arg);
        put.Environment["ETCDCTL_API"] = "3";
        using (var etcdctl = System.Diagnostics.Process.Start(put)!)
        {
            await etcdctl.WaitForExitAsync();
            Assert.True(etcdctl.ExitCode == 0, await etcdctl.StandardError.ReadToEndAsync());
        }
        var read = await Eventually.ValueAsync(() => broker.State.Topics.Image.Brokers.GetValueOrDefault(9), b => b is not null, Timeout, "the old registration in the image");
        Assert.Equal(("old-host", 9099, (string?)null), (read!.Host, read.Port, read.SchemaRegistryUrl));
    }

    [Theory]
    [InlineData(null, "http://0.0.0.0:8081", "http://localhost:8081", "broker-1.example", "http://broker-1.example:8081")]
    [InlineData(null, "http://127.0.0.1:0", "http://127.0.0.1:40123", "127.0.0.1", "http://127.0.0.1:40123")]
    [InlineData("registry-1.example:8081", "http://0.0.0.0:8081", "http://localhost:8081", "broker-1.example", "http://registry-1.example:8081")]
    [InlineData("https://registry-1.example/", "http://0.0.0.0:8081", "http://localhost:8081", "h", "https://registry-1.example")]
    [InlineData(null, "http://0.0.0.0:8081,https://0.0.0.0:8443", "http://localhost:8081,https://localhost:8443", "broker-1.example", "https://broker-1.example:8443")]
    [InlineData(null, "https://127.0.0.1:0", "https://127.0.0.1:40124", "127.0.0.1", "https://127.0.0.1:40124")]
    public void TheRegistryUrlOtherBrokersForwardToIsReachableFromThem(string? advertised, string listeners, string bound, string brokerHost, string expected) =>
        Assert.Equal(expected, TributaryServer.AdvertisedRegistryUrl(advertised, listeners, bound.Split(','), brokerHost));

    [Fact]
    public void ReplicasArePlacedOverRacksAndLeadersRoundRobin()
    {
        BrokerRegistration B(int id, string rack) => new(id, "h", 1, rack, Guid.Empty);
        var brokers = new[] { B(1, "a"), B(2, "a"), B(3, "b"), B(4, "b"), B(5, "c"), B(6, "c") };
        var racks = brokers.ToDictionary(b => b.NodeId, b => b.Rack);
        var assignment = ReplicaPlacement.Assign(brokers, 12, 3, startIndex: 0, shift: 0);
        Assert.All(assignment, r => Assert.Equal(3, r.Select(id => racks[id]).Distinct().Count()));
        Assert.All(assignment, r => Assert.Equal(3, r.Distinct().Count()));
        Assert.Equal(6, assignment.Select(r => r[0]).Distinct().Count()); // every broker leads some partitions
        Assert.Equal(2, assignment.GroupBy(r => r[0]).Max(g => g.Count()));
    }
}
