using System.Collections.Concurrent;
using System.Security.Cryptography;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Replication;
using Tributary.Protocol.Messages;
using Tributary.Server;
using Tributary.Storage;
using Tributary.Testing;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// KIP-455 reassignments on three in-process brokers over one etcd: a replica moves from broker 1 to broker 3 while an
/// acks=all producer writes, and no acknowledged record is lost; broker 3 alone then serves every record and broker 1
/// has deleted its replica. AlterPartitionReassignments and ListPartitionReassignments are sent as raw requests (no
/// Confluent.Kafka admin call exists for them); records go through real Confluent.Kafka clients.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterReassignmentTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    internal static readonly Dictionary<string, string> Settings = new()
    {
        ["broker.session.timeout.ms"] = "6000",
        ["schema.registry.enable"] = "false",
        ["replica.lag.time.max.ms"] = "4000",
        ["replica.fetch.wait.max.ms"] = "100",
        ["offsets.topic.num.partitions"] = "3",
        ["transaction.state.log.num.partitions"] = "3",
    };

    internal static async Task CreateAsync(TributaryCluster cluster, string name, int[][] assignment, Dictionary<string, string>? configs = null)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = name,
            NumPartitions = assignment.Length,
            ReplicationFactor = -1,
            ReplicasAssignments = assignment.Select((r, p) => (p, r)).ToDictionary(x => x.p, x => x.r.ToList()),
            Configs = configs,
        }]);
        foreach (var broker in cluster.Brokers)
            await Eventually.TrueAsync(() => broker.State.Topics.Get(name) is not null, Timeout, $"broker {broker.State.NodeId} sees {name}");
    }

    internal static async Task<AlterPartitionReassignmentsResponse> AlterAsync(string bootstrap, string topic, int partition, int[]? replicas, int timeoutMs = 30_000)
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        return await raw.SendAsync<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
        {
            TimeoutMs = timeoutMs,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Replicas = replicas?.ToList() }] }],
        }, 0, TimeSpan.FromSeconds(40));
    }

    internal static async Task<ListPartitionReassignmentsResponse> ListAsync(string bootstrap, string? topic = null, params int[] partitions)
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        return await raw.SendAsync<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest
        {
            Topics = topic is null ? null : [new() { Name = topic, PartitionIndexes = [.. partitions] }],
        }, 0);
    }

    private static KafkaErrorCode PartitionError(AlterPartitionReassignmentsResponse response) =>
        (KafkaErrorCode)response.Responses.Single().Partitions.Single().ErrorCode;

    private static byte[] Bytes(PartitionLog log)
    {
        using var slice = log.Read(log.LogStartOffset, int.MaxValue);
        return slice.Memory.ToArray();
    }

    private static IProducer<string, string> Producer(string bootstrap) => new ProducerBuilder<string, string>(new ProducerConfig
    {
        BootstrapServers = bootstrap,
        Acks = Acks.All,
        EnableIdempotence = true,
        MessageTimeoutMs = 60_000,
        LingerMs = 2,
    }).Build();

    /// <summary>Every record of the partition from <paramref name="bootstrap"/>, by offset, until <paramref name="count"/> are read.</summary>
    internal static async Task<SortedDictionary<long, string>> ConsumeAllAsync(string bootstrap, string topic, int count)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "reassign-check-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var seen = new SortedDictionary<long, string>();
        await Eventually.TrueAsync(() =>
        {
            // Everything buffered, then a pause: one record per poll would take the whole timeout.
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && seen.Count < count; r = consumer.Consume(TimeSpan.FromMilliseconds(200)))
                seen[r.Offset.Value] = r.Message.Value;
            return seen.Count >= count;
        }, Timeout, $"{count} records read back", () => seen.Count);
        return seen;
    }

    [Fact]
    public async Task AReplicaMovesToAnotherBrokerWithoutLosingAnAcknowledgedRecord()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "moving", [[1, 2]], new() { ["min.insync.replicas"] = "2" });
        var acked = new ConcurrentDictionary<string, long>();
        using (var producer = Producer(cluster.BootstrapServers))
        {
            for (var i = 0; i < 2000; i++)
                producer.Produce("moving", new Message<string, string> { Key = "k", Value = "before-" + i },
                    r => { if (r.Error.Code == Confluent.Kafka.ErrorCode.NoError) acked[r.Message.Value] = r.Offset.Value; });
            Assert.Equal(0, producer.Flush(Timeout));
        }
        Assert.Equal(2000, acked.Count);

        // A producer keeps writing through the move; what it saw acknowledged must all be there afterwards.
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var writer = Task.Run(async () =>
        {
            using var producer = Producer(cluster.BootstrapServers);
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    var r = await producer.ProduceAsync("moving", new Message<string, string> { Key = "k", Value = "during-" + i });
                    acked[r.Message.Value] = r.Offset.Value;
                }
                catch (ProduceException<string, string>)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        });
        await Eventually.TrueAsync(() => acked.Count >= 2100, Timeout, "the writer is writing", () => acked.Count);

        var alter = await AlterAsync(cluster.Broker(3)!.BootstrapServers, "moving", 0, [2, 3]);
        Assert.Equal(0, alter.ErrorCode);
        Assert.Equal(KafkaErrorCode.None, PartitionError(alter));
        var started = cluster.Broker(3)!.State.Topics.Image.Partition("moving", 0)!;
        // The image holds the reassignment or, if broker 3 caught up that fast, its completion.
        Assert.True(started.IsReassigning ? started.Replicas.SequenceEqual([2, 3, 1]) && started.AddingReplicas.SequenceEqual([3]) && started.RemovingReplicas.SequenceEqual([1])
            : started.Replicas.SequenceEqual([2, 3]), $"replicas [{string.Join(",", started.Replicas)}]");

        await Eventually.ValueAsync(async () => (await ListAsync(cluster.Broker(1)!.BootstrapServers)).Topics.Count, n => n == 0, Timeout,
            "the reassignment to complete", n => cluster.Broker(1)!.State.Topics.Image.Partition("moving", 0));
        var beforeStop = acked.Count;
        await Eventually.TrueAsync(() => acked.Count >= beforeStop + 100, Timeout, "more writes after the move", () => acked.Count);
        await stop.CancelAsync();
        await writer;

        foreach (var broker in cluster.Brokers)
        {
            var state = broker.State.Topics.Image.Partition("moving", 0)!;
            Assert.Equal([2, 3], state.Replicas);
            Assert.Equal([2, 3], state.Isr.Order());
            Assert.Equal(2, state.Leader); // moved off broker 1 to the first target replica in sync
            Assert.False(state.IsReassigning);
        }
        // Broker 1 no longer holds a replica: not open, and its directory is gone.
        Assert.Null(cluster.Broker(1)!.State.Topics.GetPartition("moving", 0));
        await Eventually.TrueAsync(() => !Directory.EnumerateDirectories(cluster.Broker(1)!.DataDir, "moving-0*").Any(), Timeout, "broker 1 deleted its replica",
            () => string.Join(",", Directory.EnumerateDirectories(cluster.Broker(1)!.DataDir)));
        // Brokers 2 and 3 hold the same bytes.
        await Eventually.TrueAsync(() =>
        {
            var logs = new[] { 2, 3 }.Select(n => cluster.Broker(n)!.State.Topics.GetPartition("moving", 0)!).ToList();
            return logs[0].LogEndOffset == logs[1].LogEndOffset && SHA256.HashData(Bytes(logs[0])).SequenceEqual(SHA256.HashData(Bytes(logs[1])));
        }, Timeout, "brokers 2 and 3 hold the same log");

        // Broker 3 alone: stop broker 2, and every acknowledged record is read back from broker 3, at its offset.
        await cluster.StopBrokerAsync(2);
        await Eventually.TrueAsync(() => cluster.Broker(3)!.State.Topics.Image.Partition("moving", 0)!.Leader == 3, Timeout, "broker 3 leads");
        var records = await ConsumeAllAsync(cluster.Broker(3)!.BootstrapServers, "moving", acked.Values.Max() is var last ? (int)last + 1 : 0);
        var lost = acked.Where(a => !records.TryGetValue(a.Value, out var v) || v != a.Key).Select(a => a.Key).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged records lost or moved, e.g. {string.Join(", ", lost.Take(5))}; {failures} produce failures");
    }

    [Fact]
    public async Task RequestsAreAnsweredWithKafkasErrorCodes()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "errors", [[1, 2]]);
        var bootstrap = cluster.Broker(2)!.BootstrapServers;

        Assert.Equal(KafkaErrorCode.UnknownTopicOrPartition, PartitionError(await AlterAsync(bootstrap, "no-such-topic", 0, [1, 2])));
        Assert.Equal(KafkaErrorCode.UnknownTopicOrPartition, PartitionError(await AlterAsync(bootstrap, "errors", 5, [1, 2])));
        foreach (var bad in new[] { Array.Empty<int>(), [2, 2], [1, 9] })
        {
            var response = await AlterAsync(bootstrap, "errors", 0, bad);
            Assert.Equal(KafkaErrorCode.InvalidReplicaAssignment, PartitionError(response));
            Assert.NotNull(response.Responses[0].Partitions[0].ErrorMessage);
        }
        Assert.Equal((KafkaErrorCode)85, PartitionError(await AlterAsync(bootstrap, "errors", 0, null)));
        // The assignment it already has: nothing to do, nothing written.
        var epoch = cluster.Broker(2)!.State.Topics.Image.Partition("errors", 0)!.PartitionEpoch;
        Assert.Equal(KafkaErrorCode.None, PartitionError(await AlterAsync(bootstrap, "errors", 0, [1, 2])));
        Assert.Equal(epoch, cluster.Broker(2)!.State.Topics.Image.Partition("errors", 0)!.PartitionEpoch);

        // A timeout that has passed before the request is handled: the top-level error, repeated on the partition.
        var late = await AlterAsync(bootstrap, "errors", 0, [2, 3], timeoutMs: 0);
        Assert.Equal((short)KafkaErrorCode.RequestTimedOut, late.ErrorCode);
        Assert.Equal(KafkaErrorCode.RequestTimedOut, PartitionError(late));
        Assert.False(cluster.Broker(2)!.State.Topics.Image.Partition("errors", 0)!.IsReassigning);

        Assert.Empty((await ListAsync(bootstrap)).Topics);
        Assert.Empty((await ListAsync(bootstrap, "errors", 0, 7)).Topics);
        Assert.Empty((await ListAsync(bootstrap, "no-such-topic", 0)).Topics);

        // Both APIs are advertised at v0.
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        var versions = await raw.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
        Assert.Contains(versions.ApiKeys, k => k.ApiKey == 45 && k.MinVersion == 0 && k.MaxVersion == 0);
        Assert.Contains(versions.ApiKeys, k => k.ApiKey == 46 && k.MinVersion == 0 && k.MaxVersion == 0);
    }

    [Fact]
    public async Task AShrinkWithTheRestInSyncCompletesAtOnceAndTheLeaderMoves()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "shrink", [[1, 2, 3]]);
        await Eventually.TrueAsync(() => cluster.Broker(1)!.State.Topics.Image.Partition("shrink", 0)!.Isr.Length == 3, Timeout, "all in sync");
        var before = cluster.Broker(1)!.State.Topics.Image.Partition("shrink", 0)!;
        Assert.Equal(KafkaErrorCode.None, PartitionError(await AlterAsync(cluster.Broker(1)!.BootstrapServers, "shrink", 0, [3, 2])));
        var after = cluster.Broker(1)!.State.Topics.Image.Partition("shrink", 0)!;
        Assert.Equal([3, 2], after.Replicas);
        Assert.False(after.IsReassigning);
        Assert.Equal(3, after.Leader); // broker 1 left: the first target replica in sync leads
        Assert.True(after.LeaderEpoch > before.LeaderEpoch);
        Assert.Empty((await ListAsync(cluster.Broker(1)!.BootstrapServers)).Topics);
        await Eventually.TrueAsync(() => cluster.Broker(1)!.State.Topics.GetPartition("shrink", 0) is null, Timeout, "broker 1 dropped its replica");
    }

    internal static async Task SetBrokerConfigAsync(IAdminClient admin, int broker, string name, string? value) =>
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Broker, Name = broker.ToString(System.Globalization.CultureInfo.InvariantCulture) }] =
                [new ConfigEntry { Name = name, Value = value, IncrementalOperation = value is null ? AlterConfigOpType.Delete : AlterConfigOpType.Set }],
        });

    [Fact]
    public async Task AThrottledMoveWaitsForItsQuotaAndCanBeCancelled()
    {
        // 4 KiB per replica fetch and 4000 B/s: broker 3 copies the 200 KiB at the rate, not at once.
        const int rate = 4000, fetchMax = 4096;
        await using var cluster = await TributaryCluster.StartAsync(3, new Dictionary<string, string>(Settings) { ["replica.fetch.max.bytes"] = fetchMax.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await CreateAsync(cluster, "slow", [[1, 2]]);
        using (var producer = Producer(cluster.BootstrapServers))
        {
            // One batch each: a fetch always carries at least one whole batch, so one big batch would pass in one go.
            var value = new string('x', 1024);
            for (var i = 0; i < 200; i++) await producer.ProduceAsync("slow", new Message<string, string> { Key = "k" + i, Value = value });
        }
        var total = Bytes(cluster.Broker(1)!.State.Topics.GetPartition("slow", 0)!).Length;
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        // As kafka-reassign-partitions --throttle sets them: leader throttles on the current replicas, follower on the new one.
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Topic, Name = "slow" }] =
            [
                new ConfigEntry { Name = "leader.replication.throttled.replicas", Value = "0:1,0:2", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "follower.replication.throttled.replicas", Value = "0:3", IncrementalOperation = AlterConfigOpType.Set },
            ],
        });
        await SetBrokerConfigAsync(admin, 1, "leader.replication.throttled.rate", "4000");
        await SetBrokerConfigAsync(admin, 2, "leader.replication.throttled.rate", "4000");
        await SetBrokerConfigAsync(admin, 3, "follower.replication.throttled.rate", "4000");
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Replicas!.Throttle.Leader.Rate == (b.State.NodeId == 3 ? TokenBucket.Unlimited : rate)
            && b.State.Replicas!.Throttle.Follower.Rate == (b.State.NodeId == 3 ? rate : TokenBucket.Unlimited)), Timeout, "every broker applies its rates");
        var described = (await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }]))[0].Entries["leader.replication.throttled.rate"];
        Assert.Equal("4000", described.Value);
        Assert.Equal(ConfigSource.DynamicBrokerConfig, described.Source);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(KafkaErrorCode.None, PartitionError(await AlterAsync(cluster.Broker(1)!.BootstrapServers, "slow", 0, [2, 3])));
        // However fast it could go, what broker 3 holds at any moment is bounded by the rate: a full bucket (one
        // second's worth), the rate since, and one fetch charged after it was let through.
        var copied = await Eventually.ValueAsync(() => cluster.Broker(3)!.State.Topics.GetPartition("slow", 0) is { } log ? Bytes(log).Length : 0,
            n => n >= 24 * 1024, Timeout, "broker 3 copies 24 KiB");
        var elapsed = clock.Elapsed.TotalSeconds;
        var floor = (copied - rate - fetchMax) / (double)rate;
        Assert.True(elapsed >= floor, $"broker 3 copied {copied} B in {elapsed:F2} s, faster than {rate} B/s allows (at least {floor:F2} s)");
        Assert.True(copied < total, $"broker 3 copied all {total} B");
        var ongoing = (await ListAsync(cluster.Broker(2)!.BootstrapServers, "slow", 0)).Topics.Single().Partitions.Single();
        Assert.Equal([2, 3, 1], ongoing.Replicas);
        Assert.Equal([3], ongoing.AddingReplicas);
        Assert.Equal([1], ongoing.RemovingReplicas);

        // Cancel: back to the original replicas; broker 3 drops what it copied.
        Assert.Equal(KafkaErrorCode.None, PartitionError(await AlterAsync(cluster.Broker(3)!.BootstrapServers, "slow", 0, null)));
        var reverted = cluster.Broker(3)!.State.Topics.Image.Partition("slow", 0)!;
        Assert.Equal([2, 1], reverted.Replicas);
        Assert.Equal([1, 2], reverted.Isr.Order());
        Assert.Equal(1, reverted.Leader);
        Assert.False(reverted.IsReassigning);
        Assert.Empty((await ListAsync(cluster.Broker(1)!.BootstrapServers)).Topics);
        await Eventually.TrueAsync(() => cluster.Broker(3)!.State.Topics.GetPartition("slow", 0) is null
            && !Directory.EnumerateDirectories(cluster.Broker(3)!.DataDir, "slow-0*").Any(), Timeout, "broker 3 deleted its partial replica");
        Assert.Equal((KafkaErrorCode)85, PartitionError(await AlterAsync(cluster.Broker(3)!.BootstrapServers, "slow", 0, null)));

        // The rates removed, the same move completes.
        await SetBrokerConfigAsync(admin, 1, "leader.replication.throttled.rate", null);
        await SetBrokerConfigAsync(admin, 2, "leader.replication.throttled.rate", null);
        await SetBrokerConfigAsync(admin, 3, "follower.replication.throttled.rate", null);
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Replicas!.Throttle.Leader.Rate == TokenBucket.Unlimited
            && b.State.Replicas!.Throttle.Follower.Rate == TokenBucket.Unlimited), Timeout, "the rates are gone");
        Assert.Equal(KafkaErrorCode.None, PartitionError(await AlterAsync(cluster.Broker(1)!.BootstrapServers, "slow", 0, [2, 3])));
        await Eventually.ValueAsync(async () => (await ListAsync(cluster.Broker(1)!.BootstrapServers)).Topics.Count, n => n == 0, Timeout, "the unthrottled move to complete");
        Assert.Equal([2, 3], cluster.Broker(1)!.State.Topics.Image.Partition("slow", 0)!.Replicas);
        Assert.Equal(200, cluster.Broker(3)!.State.Topics.GetPartition("slow", 0)!.LogEndOffset);
    }
}
