using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;
using Tributary.Protocol.Messages;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Cli.Kafka;

/// <summary>One partition's reassignment in progress: all its replicas, those being added and those being removed.</summary>
public sealed record OngoingReassignment(string Topic, int Partition, int[] Replicas, int[] Adding, int[] Removing)
{
    /// <summary>Where it is going: the replicas minus those being removed.</summary>
    public int[] Target => [.. Replicas.Where(r => !Removing.Contains(r))];
}

/// <summary>
/// Partition reassignments (KIP-455) against any Kafka-compatible cluster. Confluent.Kafka 2.x (librdkafka) has no
/// AlterPartitionReassignments or ListPartitionReassignments, so those two go as raw v0 requests to the controller (or
/// the first broker, when the cluster does not name one); configs and metadata go through the admin client. The
/// throttle is set and cleared as <c>kafka-reassign-partitions.sh</c> does it (KIP-73 configs).
/// </summary>
public sealed class ReassignmentClient(IAdminClient admin)
{
    public const string LeaderRate = "leader.replication.throttled.rate";
    public const string FollowerRate = "follower.replication.throttled.rate";
    public const string LeaderReplicas = "leader.replication.throttled.replicas";
    public const string FollowerReplicas = "follower.replication.throttled.replicas";

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(40);

    public IAdminClient Admin => admin;

    /// <summary>Each partition's replica list, by topic and partition (internal topics included).</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), int[]> CurrentAssignment()
    {
        var result = new Dictionary<(string, int), int[]>();
        foreach (var topic in ClientOptions.Metadata(admin).Topics.Where(t => !t.Error.IsError))
            foreach (var p in topic.Partitions)
                result[(topic.Topic, p.PartitionId)] = p.Replicas;
        return result;
    }

    /// <summary>The brokers with their racks (DescribeCluster; the metadata's broker list, without racks, if it fails).</summary>
    public async Task<IReadOnlyList<BrokerSlot>> BrokersAsync()
    {
        try
        {
            var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { RequestTimeout = ClientOptions.Timeout });
            return [.. cluster.Nodes.OrderBy(n => n.Id).Select(n => new BrokerSlot(n.Id, string.IsNullOrEmpty(n.Rack) ? null : n.Rack))];
        }
        catch (KafkaException)
        {
            return [.. ClientOptions.Metadata(admin).Brokers.OrderBy(b => b.BrokerId).Select(b => new BrokerSlot(b.BrokerId, null))];
        }
    }

    /// <summary>Starts (replicas) or cancels (null) reassignments; returns each partition's error (NONE when accepted).</summary>
    public async Task<IReadOnlyDictionary<(string Topic, int Partition), (KafkaErrorCode Error, string? Message)>> AlterAsync(
        IEnumerable<(string Topic, int Partition, int[]? Replicas)> partitions)
    {
        var request = new AlterPartitionReassignmentsRequest { TimeoutMs = (int)RequestTimeout.TotalMilliseconds - 5000 };
        foreach (var topic in partitions.GroupBy(p => p.Topic))
            request.Topics.Add(new AlterPartitionReassignmentsRequest.ReassignableTopic
            {
                Name = topic.Key,
                Partitions = [.. topic.Select(p => new AlterPartitionReassignmentsRequest.ReassignablePartition { PartitionIndex = p.Partition, Replicas = p.Replicas?.ToList() })],
            });
        var (host, port) = await ControllerAsync();
        var response = await RawRequests.SendAsync<AlterPartitionReassignmentsResponse>(host, port, request, 0, RequestTimeout);
        if (response.ErrorCode != 0)
            throw new CliException($"AlterPartitionReassignments failed: {(KafkaErrorCode)response.ErrorCode}{(response.ErrorMessage is { } m ? ": " + m : "")}");
        return response.Responses.SelectMany(t => t.Partitions.Select(p => ((t.Name, p.PartitionIndex), ((KafkaErrorCode)p.ErrorCode, p.ErrorMessage))))
            .ToDictionary(x => x.Item1, x => x.Item2);
    }

    /// <summary>Every reassignment in progress in the cluster.</summary>
    public async Task<IReadOnlyDictionary<(string Topic, int Partition), OngoingReassignment>> ListAsync()
    {
        var (host, port) = await ControllerAsync();
        var response = await RawRequests.SendAsync<ListPartitionReassignmentsResponse>(host, port, new ListPartitionReassignmentsRequest(), 0);
        if (response.ErrorCode != 0)
            throw new CliException($"ListPartitionReassignments failed: {(KafkaErrorCode)response.ErrorCode}{(response.ErrorMessage is { } m ? ": " + m : "")}");
        return response.Topics.SelectMany(t => t.Partitions.Select(p => new OngoingReassignment(t.Name, p.PartitionIndex, [.. p.Replicas], [.. p.AddingReplicas], [.. p.RemovingReplicas])))
            .ToDictionary(o => (o.Topic, o.Partition));
    }

    /// <summary>
    /// Kafka's throttle for a plan: on each moving topic, leader throttles on the partitions' current replicas and
    /// follower throttles on the replicas they gain; on every broker involved (current or target), both rates.
    /// </summary>
    public async Task SetThrottleAsync(IReadOnlyList<PartitionMove> moves, IReadOnlyDictionary<(string Topic, int Partition), int[]> current, long bytesPerSecond)
    {
        var moving = moves.Where(m => !current.TryGetValue((m.Topic, m.Partition), out var now) || !now.SequenceEqual(m.Replicas)).ToList();
        foreach (var topic in moving.GroupBy(m => m.Topic))
        {
            var leader = topic.SelectMany(m => current.GetValueOrDefault((m.Topic, m.Partition), []).Select(b => (m.Partition, b)));
            var follower = topic.SelectMany(m => m.Replicas.Except(current.GetValueOrDefault((m.Topic, m.Partition), [])).Select(b => (m.Partition, b)));
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [new ConfigResource { Type = ResourceType.Topic, Name = topic.Key }] =
                [
                    new ConfigEntry { Name = LeaderReplicas, Value = Format(leader), IncrementalOperation = AlterConfigOpType.Set },
                    new ConfigEntry { Name = FollowerReplicas, Value = Format(follower), IncrementalOperation = AlterConfigOpType.Set },
                ],
            }, new IncrementalAlterConfigsOptions { RequestTimeout = ClientOptions.Timeout });
        }
        var brokers = moving.SelectMany(m => m.Replicas.Concat(current.GetValueOrDefault((m.Topic, m.Partition), []))).Distinct().Order();
        var rate = bytesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var broker in brokers)
            await AlterBrokerAsync(broker, [(LeaderRate, rate), (FollowerRate, rate)]);
    }

    /// <summary>Kafka's clearAllThrottles: the rates off every broker, the replica lists off the plan's topics.</summary>
    public async Task<(IReadOnlyList<int> Brokers, IReadOnlyList<string> Topics)> ClearThrottlesAsync(IEnumerable<string> topics)
    {
        var brokers = ClientOptions.Metadata(admin).Brokers.Select(b => b.BrokerId).Order().ToList();
        foreach (var broker in brokers) await AlterBrokerAsync(broker, [(LeaderRate, null), (FollowerRate, null)]);
        var names = topics.Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var topic in names)
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [new ConfigResource { Type = ResourceType.Topic, Name = topic }] =
                [
                    new ConfigEntry { Name = LeaderReplicas, IncrementalOperation = AlterConfigOpType.Delete },
                    new ConfigEntry { Name = FollowerReplicas, IncrementalOperation = AlterConfigOpType.Delete },
                ],
            }, new IncrementalAlterConfigsOptions { RequestTimeout = ClientOptions.Timeout });
        return (brokers, names);
    }

    /// <summary>Sets (a value) or deletes (null) dynamic configs of one broker; librdkafka sends a BROKER resource to that broker.</summary>
    private Task AlterBrokerAsync(int broker, IReadOnlyList<(string Name, string? Value)> configs) =>
        admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Broker, Name = broker.ToString(System.Globalization.CultureInfo.InvariantCulture) }] =
                [.. configs.Select(c => new ConfigEntry { Name = c.Name, Value = c.Value, IncrementalOperation = c.Value is null ? AlterConfigOpType.Delete : AlterConfigOpType.Set })],
        }, new IncrementalAlterConfigsOptions { RequestTimeout = ClientOptions.Timeout });

    private static string Format(IEnumerable<(int Partition, int Broker)> replicas) =>
        string.Join(",", replicas.Distinct().OrderBy(r => r.Partition).ThenBy(r => r.Broker).Select(r => $"{r.Partition}:{r.Broker}"));

    /// <summary>The controller's endpoint (where Kafka wants these requests), else the first broker's.</summary>
    private async Task<(string Host, int Port)> ControllerAsync()
    {
        var metadata = ClientOptions.Metadata(admin);
        var brokers = metadata.Brokers.ToDictionary(b => b.BrokerId);
        try
        {
            var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { RequestTimeout = ClientOptions.Timeout });
            if (cluster.Controller is { } c && brokers.TryGetValue(c.Id, out var controller)) return (controller.Host, controller.Port);
        }
        catch (KafkaException)
        {
        }
        var first = metadata.Brokers.OrderBy(b => b.BrokerId).First();
        return (first.Host, first.Port);
    }
}
