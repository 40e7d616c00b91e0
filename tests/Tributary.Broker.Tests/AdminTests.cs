using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Tributary.Broker.Tests;

public sealed class AdminTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task CreateTopicsValidatesWithoutCreatingWhenAsked()
    {
        using var admin = broker.Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "validated", NumPartitions = 4, ReplicationFactor = 1 }],
            new CreateTopicsOptions { ValidateOnly = true });
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(metadata.Topics, t => t.Topic == "validated");
    }

    [Fact]
    public async Task CreateTopicsReportsEachProblem()
    {
        await broker.CreateTopicAsync("exists-already");
        using var admin = broker.Admin();
        var e = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
        [
            new TopicSpecification { Name = "exists-already", NumPartitions = 1 },
            new TopicSpecification { Name = "bad-config", NumPartitions = 1, Configs = new() { ["retention.ms"] = "soon" } },
            new TopicSpecification { Name = "unknown-config", NumPartitions = 1, Configs = new() { ["no.such.config"] = "1" } },
            new TopicSpecification { Name = "three-replicas", NumPartitions = 1, ReplicationFactor = 3 },
            new TopicSpecification { Name = "fine", NumPartitions = 2 },
        ]));
        var byName = e.Results.ToDictionary(r => r.Topic, r => r.Error.Code);
        Assert.Equal(ErrorCode.TopicAlreadyExists, byName["exists-already"]);
        Assert.Equal(ErrorCode.InvalidConfig, byName["bad-config"]);
        Assert.Equal(ErrorCode.InvalidConfig, byName["unknown-config"]);
        Assert.Equal(ErrorCode.InvalidReplicationFactor, byName["three-replicas"]);
        Assert.Equal(ErrorCode.NoError, byName["fine"]);
    }

    [Fact]
    public async Task DefaultPartitionCountComesFromTheBroker()
    {
        using var admin = broker.Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "defaulted", NumPartitions = -1, ReplicationFactor = -1 }]);
        var topic = admin.GetMetadata("defaulted", TimeSpan.FromSeconds(10)).Topics.Single();
        Assert.Single(topic.Partitions);
    }

    [Fact]
    public async Task DescribeAndAlterTopicConfigs()
    {
        await broker.CreateTopicAsync("configured", configs: new() { ["retention.ms"] = "1000000" });
        using var admin = broker.Admin();
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = "configured" };
        var described = (await admin.DescribeConfigsAsync([resource]))[0].Entries;
        Assert.Equal("1000000", described["retention.ms"].Value);
        Assert.Equal(ConfigSource.DynamicTopicConfig, described["retention.ms"].Source);
        Assert.Equal("delete", described["cleanup.policy"].Value);
        Assert.True(described["cleanup.policy"].IsDefault);

        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] =
            [
                new ConfigEntry { Name = "segment.ms", Value = "3600000", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "retention.ms", IncrementalOperation = AlterConfigOpType.Delete },
            ],
        });
        described = (await admin.DescribeConfigsAsync([resource]))[0].Entries;
        Assert.Equal("3600000", described["segment.ms"].Value);
        Assert.Equal("604800000", described["retention.ms"].Value);
        Assert.Equal(3600000, broker.Server.State.Topics.GetPartition("configured", 0)!.Config.SegmentMs);

        var bad = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(
            new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "segment.bytes", Value = "-5", IncrementalOperation = AlterConfigOpType.Set }] }));
        Assert.Equal(ErrorCode.InvalidConfig, bad.Results[0].Error.Code);
    }

    [Fact]
    public async Task DescribeBrokerConfigs()
    {
        using var admin = broker.Admin();
        var entries = (await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }]))[0].Entries;
        Assert.Equal("true", entries["auto.create.topics.enable"].Value);
        Assert.Equal("1", entries["num.partitions"].Value);
        // The answer is the settings table: every setting, read-only unless dynamic, nothing else.
        Assert.Equal(BrokerSettingDefinitions.All.Select(d => d.Name).Order(), entries.Keys.Order());
        Assert.All(entries.Values, e => Assert.Equal(!BrokerSettingDefinitions.Get(e.Name).Dynamic, e.IsReadOnly));
        Assert.False(entries["leader.replication.throttled.rate"].IsReadOnly);
        Assert.Equal(broker.Server.State.Settings.Connections.MaxConnections.ToString(), entries["max.connections"].Value);
        Assert.Equal("604800000", entries["log.retention.ms"].Value);
    }

    [Fact]
    public async Task OnlyDynamicBrokerConfigsChangeAndABrokersOwnValueWinsOverTheDefault()
    {
        using var admin = broker.Admin();
        var own = new ConfigResource { Type = ResourceType.Broker, Name = "1" };
        var defaults = new ConfigResource { Type = ResourceType.Broker, Name = "" };
        async Task Alter(ConfigResource resource, string name, string? value)
        {
            if (resource.Name.Length > 0)
            {
                await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
                {
                    [resource] = [new ConfigEntry { Name = name, Value = value, IncrementalOperation = value is null ? AlterConfigOpType.Delete : AlterConfigOpType.Set }],
                });
                return;
            }
            // The cluster-wide default ("" as kafka-configs --entity-default sends it): librdkafka refuses an empty name.
            await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
            var response = await raw.SendAsync<Tributary.Protocol.Messages.IncrementalAlterConfigsResponse>(new Tributary.Protocol.Messages.IncrementalAlterConfigsRequest
            {
                Resources = [new() { ResourceType = 4, ResourceName = "", Configs = [new() { Name = name, Value = value, ConfigOperation = (sbyte)(value is null ? 1 : 0) }] }],
            }, 1);
            Assert.Equal(0, response.Responses.Single().ErrorCode);
        }
        async Task<ConfigEntryResult> Described(string name) => (await admin.DescribeConfigsAsync([own]))[0].Entries[name];
        try
        {
            await Alter(defaults, "follower.replication.throttled.rate", "5000");
            await Alter(own, "follower.replication.throttled.rate", "7000");
            Assert.Equal(("7000", ConfigSource.DynamicBrokerConfig), (await Described("follower.replication.throttled.rate")) is var e ? (e.Value, e.Source) : default);
            Assert.Equal(7000, broker.Server.State.Replicas!.Throttle.Follower.Rate);
            await Alter(own, "follower.replication.throttled.rate", null);
            Assert.Equal(("5000", ConfigSource.DynamicDefaultBrokerConfig), (await Described("follower.replication.throttled.rate")) is var d ? (d.Value, d.Source) : default);

            var staticOne = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => Alter(own, "num.partitions", "3"));
            Assert.Equal(ErrorCode.InvalidConfig, staticOne.Results[0].Error.Code);
            Assert.Contains("Cannot update these configs dynamically", staticOne.Results[0].Error.Reason);
            var negative = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => Alter(own, "leader.replication.throttled.rate", "-5"));
            Assert.Equal(ErrorCode.InvalidConfig, negative.Results[0].Error.Code);
        }
        finally
        {
            await Alter(own, "follower.replication.throttled.rate", null);
            await Alter(defaults, "follower.replication.throttled.rate", null);
        }
        Assert.Equal(Tributary.Broker.Replication.TokenBucket.Unlimited, broker.Server.State.Replicas!.Throttle.Follower.Rate);
    }

    [Fact]
    public async Task DescribeBrokerConfigsCarriesTheTablesDocumentation()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new Tributary.Protocol.Messages.DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = "" }],
            IncludeDocumentation = true,
        };
        var response = await raw.SendAsync<Tributary.Protocol.Messages.DescribeConfigsResponse>(request, 4);
        var configs = Assert.Single(response.Results).Configs.ToDictionary(c => c.Name);
        Assert.Equal(BrokerSettingDefinitions.Get("fetch.max.bytes").Doc, configs["fetch.max.bytes"].Documentation);
        Assert.Equal(3, configs["num.partitions"].ConfigType); // INT
    }

    [Fact]
    public async Task CreatePartitionsGrowsATopic()
    {
        await broker.CreateTopicAsync("growing", 2);
        using var admin = broker.Admin();
        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "growing", IncreaseTo = 5 }]);
        Assert.Equal(5, admin.GetMetadata("growing", TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Count);
        var e = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = "growing", IncreaseTo = 3 }]));
        Assert.Equal(ErrorCode.InvalidPartitions, e.Results[0].Error.Code);
        using var producer = broker.Producer();
        var report = await producer.ProduceAsync(new TopicPartition("growing", 4), new Message<byte[]?, byte[]?> { Value = [1] });
        Assert.Equal(0, report.Offset.Value);
    }

    [Fact]
    public async Task DeleteRecordsMovesTheLowWatermark()
    {
        await broker.CreateTopicAsync("trimmed");
        using (var producer = broker.Producer())
        {
            for (var i = 0; i < 100; i++) producer.Produce("trimmed", new Message<byte[]?, byte[]?> { Value = [(byte)i] });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        using var admin = broker.Admin();
        var result = await admin.DeleteRecordsAsync([new TopicPartitionOffset("trimmed", 0, 60)]);
        Assert.Equal(60, result[0].Offset.Value);
        var remaining = broker.ReadAll("trimmed", 1, 40);
        Assert.Equal(60, remaining[0].Offset.Value);
        Assert.Equal(60, remaining[0].Message.Value![0]);
    }

    [Fact]
    public async Task DeleteTopicsRemovesTheTopicAndItsData()
    {
        await broker.CreateTopicAsync("doomed", 3);
        using (var producer = broker.Producer())
            await producer.ProduceAsync("doomed", new Message<byte[]?, byte[]?> { Value = [1] });
        using var admin = broker.Admin();
        await admin.DeleteTopicsAsync(["doomed"]);
        Assert.Null(broker.Server.State.Topics.Get("doomed"));
        Assert.False(Directory.Exists(Path.Combine(broker.Server.DataDir, "doomed-0")));
        var e = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync(["doomed"]));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, e.Results[0].Error.Code);
    }

    [Fact]
    public async Task DescribeClusterNamesThisBroker()
    {
        using var admin = broker.Admin();
        var cluster = await admin.DescribeClusterAsync();
        Assert.Single(cluster.Nodes);
        Assert.Equal(broker.Server.Port, cluster.Nodes[0].Port);
        Assert.False(string.IsNullOrEmpty(cluster.ClusterId));
        Assert.Equal(cluster.Nodes[0].Id, cluster.Controller!.Id);
    }
}
