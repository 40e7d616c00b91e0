using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Confluent.Kafka.SyncOverAsync;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Tributary.Storage;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// The registry on every broker of a cluster (three in-process brokers over one etcd child process), driven by
/// Confluent's own registry client and serializers: one id sequence whichever broker is asked, writes forwarded to the
/// leader of <c>_schemas</c>-0 and readable at once where they were made, produce validation on a broker that is not
/// the registry's leader, the writer moving with the leadership without reusing an id, and replicas that stay
/// byte-identical.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterRegistryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Quick failover (sessions of 6 s, followers out of the ISR after 4 s), the registry on.</summary>
    private static Dictionary<string, string> Settings(params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["broker.session.timeout.ms"] = "6000",
            ["replica.lag.time.max.ms"] = "4000",
            ["replica.fetch.wait.max.ms"] = "100",
            ["schema.registry.enable"] = "true",
        };
        foreach (var (name, value) in more) settings[name] = value;
        return settings;
    }

    private static string Record(string name, int fields = 1) =>
        new JsonObject
        {
            ["type"] = "record",
            ["name"] = name,
            ["namespace"] = "cluster",
            ["fields"] = new JsonArray([.. Enumerable.Range(0, fields).Select(i => (JsonNode)new JsonObject { ["name"] = "f" + i, ["type"] = "int", ["default"] = 0 })]),
        }.ToJsonString();

    private static CachedSchemaRegistryClient Client(TributaryServer broker) => new(new SchemaRegistryConfig { Url = broker.SchemaRegistryUrl });

    private static HttpClient Http(TributaryServer broker) => new() { BaseAddress = new Uri(broker.SchemaRegistryUrl!), Timeout = Timeout };

    private static int SchemasLeader(TributaryCluster cluster) => cluster.Brokers[0].State.Topics.Image.Partition("_schemas", 0)?.Leader ?? -1;

    [Fact]
    public async Task Registrations_through_every_broker_share_one_id_sequence_and_read_back_at_once_everywhere()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings());
        // Before the first write there is no _schemas, and every registry answers from its (empty) state.
        foreach (var broker in cluster.Brokers)
        {
            using var http = Http(broker);
            var (status, subjects) = await http.GetJson("/subjects");
            Assert.Equal(200, status);
            Assert.Equal("[]", subjects!.ToJsonString());
        }
        Assert.Null(cluster.Brokers[0].State.Topics.Get("_schemas"));

        // One schema through each broker, one after the other: one sequence of ids.
        var ids = new List<int>();
        foreach (var (broker, i) in cluster.Brokers.Select((b, i) => (b, i)))
        {
            using var client = Client(broker);
            ids.Add(await client.RegisterSchemaAsync($"s{i}-value", new Schema(Record("S" + i), SchemaType.Avro)));
        }
        Assert.Equal([1, 2, 3], ids);
        var topic = cluster.Brokers[0].State.Topics.Get("_schemas")!;
        Assert.True(topic.IsInternal);
        Assert.Equal(3, topic.Partitions[0].Replicas.Length);
        Assert.Equal("compact", topic.Configs["cleanup.policy"]);
        // The same schema under another subject, through another broker, shares its id.
        using (var client = Client(cluster.Brokers[2]))
            Assert.Equal(1, await client.RegisterSchemaAsync("copy-value", new Schema(Record("S0"), SchemaType.Avro)));

        // Only the leader's writer is loaded.
        var leader = SchemasLeader(cluster);
        Assert.Equal([leader], cluster.Brokers.Where(b => b.Schemas!.IsWriter).Select(b => b.State.NodeId));

        // Read your writes: registered through a broker, readable through that broker at once (no polling here).
        foreach (var broker in cluster.Brokers)
        {
            using var http = Http(broker);
            var subject = $"ryw-{broker.State.NodeId}-value";
            var id = await http.RegisterAsync(subject, Record("Ryw" + broker.State.NodeId));
            var (byId, schema) = await http.GetJson($"/schemas/ids/{id}");
            Assert.True(byId == 200, $"broker {broker.State.NodeId} (leader {leader}) does not see id {id} it just registered: {schema?.ToJsonString()}");
            var (latest, version) = await http.GetJson($"/subjects/{subject}/versions/latest");
            Assert.True(latest == 200, $"broker {broker.State.NodeId} does not see {subject}: {version?.ToJsonString()}");
            Assert.Equal(id, (int)version!["id"]!);
        }
        Assert.Equal(6, cluster.Brokers.Select(b => b.Schemas!.MaxId).Max());

        // Every broker answers every id and subject the same, from its own state (another broker's last write reaches it
        // with its next fetch: polled).
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.Schemas!.IsCurrent), Timeout, "every registry follows an in-sync replica");
        var expected = await SnapshotAsync(cluster.Broker(leader)!);
        Assert.Contains("ryw-3-value", expected, StringComparison.Ordinal);
        foreach (var broker in cluster.Brokers)
        {
            await Eventually.ValueAsync(() => SnapshotAsync(broker), s => s == expected, Timeout, $"broker {broker.State.NodeId} answers as the leader does");
            Assert.False(broker.Schemas!.IsCatchingUp);
        }
        await ReplicasAgreeAsync(cluster);
    }

    [Fact]
    public async Task Records_produced_through_a_broker_that_does_not_lead_the_registry_are_validated_there()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings());
        using (var first = Client(cluster.Brokers[0]))
            await first.RegisterSchemaAsync("seed-value", new Schema(Record("Seed"), SchemaType.Avro));
        var leader = SchemasLeader(cluster);
        var follower = cluster.Brokers.First(b => b.State.NodeId != leader);
        var third = cluster.Brokers.First(b => b.State.NodeId != leader && b != follower);
        const string Topic = "orders";
        await CreateValidatedAsync(cluster, Topic, follower.State.NodeId, leader, third.State.NodeId);
        Assert.Equal(follower.State.NodeId, follower.State.Topics.Image.Partition(Topic, 0)!.Leader);

        var schema = (global::Avro.RecordSchema)global::Avro.Schema.Parse(Record("Order", 2));
        var producerConfig = new ProducerConfig { BootstrapServers = cluster.BootstrapServers, Acks = Acks.All, MessageTimeoutMs = 30_000 };
        // The serializer registers through the follower (forwarded to the leader), then produces to the follower, which
        // validates against its own state: the id it was just given must be there already.
        using (var registry = Client(follower))
        using (var producer = new ProducerBuilder<string, GenericRecord>(producerConfig).SetValueSerializer(new AvroSerializer<GenericRecord>(registry)).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                var order = new GenericRecord(schema);
                order.Add("f0", i);
                order.Add("f1", i * 10);
                var result = await producer.ProduceAsync(Topic, new Message<string, GenericRecord> { Key = "o" + i, Value = order });
                Assert.Equal(PersistenceStatus.Persisted, result.Status);
            }
        }
        Assert.False(follower.Schemas!.IsWriter);
        // JSON Schema, registered through the third broker and produced to the follower: its state may be a fetch behind
        // for a moment, and then it refuses retriably, so every record arrives.
        const string Readings = "readings";
        await CreateValidatedAsync(cluster, Readings, follower.State.NodeId, leader, third.State.NodeId);
        using (var registry = Client(third))
        using (var producer = new ProducerBuilder<string, SerdesTests.Reading>(producerConfig).SetValueSerializer(new JsonSerializer<SerdesTests.Reading>(registry)).Build())
        {
            for (var i = 0; i < 5; i++)
                Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(Readings, new Message<string, SerdesTests.Reading>
                {
                    Key = "r" + i,
                    Value = new SerdesTests.Reading { Sensor = "s" + i, Value = i },
                })).Status);
        }
        // An id nobody registered is refused there, and not as "retry later": the follower's state is current.
        using (var raw = new ProducerBuilder<string, byte[]>(producerConfig).Build())
        {
            var refused = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() =>
                raw.ProduceAsync(Topic, new Message<string, byte[]> { Key = "bad", Value = [0, 0, 0, 0x7f, 0x7f, 1] }));
            Assert.Equal(ErrorCode.InvalidRecord, refused.Error.Code);
        }

        // Read back through the third broker's registry.
        using var readRegistry = Client(third);
        using var consumer = new ConsumerBuilder<string, GenericRecord>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "orders-check",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetValueDeserializer(new AvroDeserializer<GenericRecord>(readRegistry).AsSyncOverAsync()).Build();
        consumer.Assign(new TopicPartitionOffset(Topic, 0, Offset.Beginning));
        var seen = new List<int>();
        await Eventually.TrueAsync(() =>
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) seen.Add((int)r.Message.Value["f1"]);
            return seen.Count >= 10;
        }, Timeout, "every order read back", () => seen.Count);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 10), seen);
    }

    [Fact]
    public async Task When_the_leader_of_schemas_stops_a_survivor_takes_writes_and_continues_the_ids()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings());
        using (var client = Client(cluster.Brokers[0]))
        {
            for (var i = 1; i <= 3; i++)
                Assert.Equal(i, await client.RegisterSchemaAsync($"before{i}-value", new Schema(Record("Before" + i), SchemaType.Avro)));
        }
        var leader = SchemasLeader(cluster);
        await cluster.StopBrokerAsync(leader);
        var survivor = cluster.Brokers[0];
        var next = await Eventually.ValueAsync(() => SchemasLeader(cluster), l => l >= 0 && l != leader, Timeout, "a new leader of _schemas-0");
        // Through the survivor that does not lead, so the write is forwarded to the new leader.
        var through = cluster.Brokers.First(b => b.State.NodeId != next);
        int id;
        using (var client = Client(through))
        {
            id = await Eventually.ValueAsync(async () =>
            {
                try
                {
                    return await client.RegisterSchemaAsync("after-value", new Schema(Record("After"), SchemaType.Avro));
                }
                catch (SchemaRegistryException e) when (e.ErrorCode is 50002 or 50003 or 50004)
                {
                    return -e.ErrorCode; // the leadership still settling: retried
                }
            }, v => v > 0, Timeout, "a registration through a survivor");
        }
        Assert.Equal(4, id);
        foreach (var broker in cluster.Brokers)
        {
            using var client = Client(broker);
            for (var old = 1; old <= 3; old++)
                Assert.Contains("Before" + old, (await client.GetSchemaAsync(old)).SchemaString, StringComparison.Ordinal);
            Assert.Contains("After", (await client.GetSchemaAsync(4)).SchemaString, StringComparison.Ordinal);
        }

        // The old leader comes back as a follower, catches up, and answers the new id itself.
        var returned = await cluster.StartBrokerAsync(leader);
        await Eventually.TrueAsync(() => returned.Schemas is { IsCurrent: true, MaxId: 4 }, Timeout, "the returning broker's registry catches up",
            () => $"current {returned.Schemas?.IsCurrent}, max id {returned.Schemas?.MaxId}");
        using (var http = Http(returned))
            Assert.Equal(200, (await http.GetJson("/schemas/ids/4")).Status);
        await ReplicasAgreeAsync(cluster);
    }

    [Fact]
    public async Task A_broker_without_a_replica_follows_the_leader_over_fetch_and_validates_there()
    {
        await using var cluster = await TributaryCluster.StartAsync(4, Settings());
        using (var first = Client(cluster.Brokers[0]))
            Assert.Equal(1, await first.RegisterSchemaAsync("seed-value", new Schema(Record("Seed"), SchemaType.Avro)));
        var replicas = cluster.Brokers[0].State.Topics.Image.Partition("_schemas", 0)!.Replicas;
        Assert.Equal(3, replicas.Length);
        var outsider = cluster.Brokers.Single(b => !replicas.Contains(b.State.NodeId));
        Assert.Null(outsider.State.Topics.GetPartition("_schemas", 0));
        await Eventually.TrueAsync(() => outsider.Schemas is { IsCurrent: true, MaxId: 1 }, Timeout, "the outsider's registry follows the leader",
            () => $"current {outsider.Schemas!.IsCurrent}, applied {outsider.Schemas.AppliedEnd}");

        // Registered through it (forwarded), in its own state when the answer comes.
        using (var http = Http(outsider))
        {
            var id = await http.RegisterAsync("outsider-value", Record("Outsider"));
            Assert.True(outsider.Schemas!.TryGetById(id, out _), $"id {id} is not in the outsider's state when its registration answered");
            Assert.Equal(200, (await http.GetJson($"/schemas/ids/{id}")).Status);
        }

        // A validated topic led by it takes records serialized against its registry.
        const string Topic = "outside";
        await CreateValidatedAsync(cluster, Topic, outsider.State.NodeId, replicas[0]);
        var schema = (global::Avro.RecordSchema)global::Avro.Schema.Parse(Record("Outside", 2));
        using var registry = Client(outsider);
        using var producer = new ProducerBuilder<string, GenericRecord>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, Acks = Acks.All, MessageTimeoutMs = 30_000 })
            .SetValueSerializer(new AvroSerializer<GenericRecord>(registry)).Build();
        var record = new GenericRecord(schema);
        record.Add("f0", 1);
        record.Add("f1", 2);
        Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(Topic, new Message<string, GenericRecord> { Key = "k", Value = record })).Status);
    }

    [Fact]
    public async Task Without_a_leader_of_schemas_writes_and_forwarded_reads_answer_50004()
    {
        // Confluent's name for the factor; one replica, so the other broker has none and follows the leader over Fetch.
        await using var cluster = await TributaryCluster.StartAsync(2, Settings(("kafkastore.topic.replication.factor", "1")));
        using (var http = Http(cluster.Brokers[0]))
            Assert.Equal(1, await http.RegisterAsync("only-value", Record("Only")));
        var holder = SchemasLeader(cluster);
        Assert.Equal([holder], cluster.Brokers[0].State.Topics.Image.Partition("_schemas", 0)!.Replicas);
        var other = cluster.Brokers.First(b => b.State.NodeId != holder);
        Assert.Null(other.State.Topics.GetPartition("_schemas", 0));
        using var otherHttp = Http(other);
        var (read, body) = await otherHttp.GetJson("/schemas/ids/1");
        Assert.True(read == 200, body?.ToJsonString());

        await cluster.StopBrokerAsync(holder);
        await Eventually.TrueAsync(() => SchemasLeader(cluster) < 0, Timeout, "_schemas-0 without a leader");
        // Its state followed the leader over Fetch; with no leader to fetch from it is no longer current.
        await Eventually.TrueAsync(() => !other.Schemas!.IsCurrent, Timeout, "the registry without a leader to follow is not current");
        var (status, error) = await otherHttp.PostJson("/subjects/later-value/versions", new { schema = Record("Later") });
        Assert.Equal(500, status);
        Assert.Equal(50004, (int)error!["error_code"]!);
        Assert.Equal("Leader not known.", (string)error["message"]!);
        var (readStatus, readError) = await otherHttp.GetJson("/schemas/ids/1");
        Assert.Equal(500, readStatus);
        Assert.Equal(50004, (int)readError!["error_code"]!);
    }

    /// <summary>A one-partition topic whose values must carry a registered schema id, on <paramref name="replicas"/> (the first leads).</summary>
    private static async Task CreateValidatedAsync(TributaryCluster cluster, string name, params int[] replicas)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = name,
                NumPartitions = 1,
                ReplicationFactor = -1,
                ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [.. replicas] },
                Configs = new Dictionary<string, string> { ["confluent.value.schema.validation"] = "true" },
            }]);
        }
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Topics.Get(name) is not null), Timeout, $"every broker sees {name}");
    }

    /// <summary>Every subject's versions and every id, as one broker's registry answers them.</summary>
    private static async Task<string> SnapshotAsync(TributaryServer broker)
    {
        using var client = Client(broker);
        var snapshot = new JsonObject();
        foreach (var subject in (await client.GetAllSubjectsAsync()).Order(StringComparer.Ordinal))
            foreach (var version in await client.GetSubjectVersionsAsync(subject))
            {
                var registered = await client.GetRegisteredSchemaAsync(subject, version);
                snapshot[$"{subject}/{version}"] = $"{registered.Id} {registered.SchemaString}";
                snapshot[$"id {registered.Id}"] = (await client.GetSchemaAsync(registered.Id)).SchemaString;
            }
        return snapshot.ToJsonString();
    }

    /// <summary>Every running broker holds a replica of _schemas-0, and all hold the same bytes up to the same end.</summary>
    private static Task ReplicasAgreeAsync(TributaryCluster cluster) =>
        Eventually.TrueAsync(() =>
        {
            var logs = cluster.Brokers.Select(b => b.State.Topics.GetPartition("_schemas", 0)).ToList();
            return logs.All(l => l is not null) && logs.Select(l => l!.HighWatermark).Distinct().Count() == 1
                && logs.Select(l => Convert.ToHexString(SHA256.HashData(Bytes(l!)))).Distinct().Count() == 1;
        }, Timeout, "every replica of _schemas-0 holds the same bytes",
            () => string.Join(" ", cluster.Brokers.Select(b => $"{b.State.NodeId}:{b.State.Topics.GetPartition("_schemas", 0)?.LogEndOffset}")));

    private static byte[] Bytes(PartitionLog log)
    {
        using var slice = log.Read(log.LogStartOffset, int.MaxValue);
        return slice.Memory.ToArray();
    }
}
