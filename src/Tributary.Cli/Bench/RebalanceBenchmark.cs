using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;

namespace Tributary.Cli.Bench;

/// <summary>Which group protocol and assignor the members use.</summary>
public enum RebalanceProtocol { ClassicEager, ClassicCooperative, Consumer }

public sealed record RebalanceBenchOptions(
    string Topic, int Partitions, int Members = 10, int Runs = 3, int HeartbeatIntervalMs = 3000,
    RebalanceProtocol Protocol = RebalanceProtocol.ClassicEager, TimeSpan? Timeout = null);

/// <summary>
/// How long a consumer-group rebalance takes: a group of members-1 consumers is formed and left to settle, then one
/// more member subscribes, and the clock runs from that subscribe until every member holds its final share (the
/// partitions split exactly once, each member floor or ceil of partitions/members), as seen by the members' own
/// assignment callbacks. The join comes at a random point of the members' heartbeat cycle. Each run uses a fresh
/// group; the result reports every run and their median and maximum.
/// Works against any Kafka-compatible cluster.
/// </summary>
public sealed class RebalanceBenchmark(ConsumerConfig baseConfig, RebalanceBenchOptions options)
{
    public async Task<BenchResult> RunAsync(IProgress<long>? progress, CancellationToken cancellation)
    {
        var times = new List<double>();
        for (var run = 0; run < options.Runs; run++)
        {
            times.Add(await Task.Run(() => RunOnce(cancellation), cancellation).ConfigureAwait(false));
            progress?.Report(run + 1);
        }
        var sorted = times.Order().ToList();
        var settings = new Dictionary<string, string>
        {
            ["members"] = options.Members.ToString(CultureInfo.InvariantCulture),
            ["protocol"] = options.Protocol switch
            {
                RebalanceProtocol.ClassicEager => "classic, range (eager)",
                RebalanceProtocol.ClassicCooperative => "classic, cooperative-sticky",
                _ => "consumer (KIP-848, broker-side assignor)",
            },
            ["heartbeat.interval.ms"] = options.HeartbeatIntervalMs.ToString(CultureInfo.InvariantCulture)
                + (options.Protocol == RebalanceProtocol.Consumer ? " (set by the broker: group.consumer.heartbeat.interval.ms)" : ""),
            ["runs (ms)"] = string.Join(" ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture))),
            ["median (ms)"] = sorted[sorted.Count / 2].ToString("F0", CultureInfo.InvariantCulture),
            ["max (ms)"] = sorted[^1].ToString("F0", CultureInfo.InvariantCulture),
        };
        return new BenchResult("rebalance", baseConfig.BootstrapServers, options.Topic, options.Partitions, 0, 0, sorted[^1] / 1000, null, settings);
    }

    /// <summary>One run; returns milliseconds from the last member's subscribe to the balanced assignment.</summary>
    private double RunOnce(CancellationToken cancellation)
    {
        var group = $"bench-rebalance-{Guid.NewGuid():N}";
        var state = new Assignments(options.Members, options.Partitions);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var pollers = new List<Task>();
        try
        {
            for (var i = 0; i < options.Members - 1; i++) pollers.Add(StartMember(group, i, state, stop.Token));
            state.WaitUntil(options.Members - 1, Deadline(), stop.Token);
            // Let the group go quiet (a cooperative follow-up rebalance, the last acknowledgements) before measuring,
            // then join at a random point of the members' heartbeat cycle: the members learn of the new member at
            // their next heartbeat, so the phase decides most of the time and must not be the same in every run.
            Thread.Sleep(options.HeartbeatIntervalMs + 500 + Random.Shared.Next(options.HeartbeatIntervalMs));
            state.WaitUntil(options.Members - 1, Deadline(), stop.Token);
            pollers.Add(StartMember(group, options.Members - 1, state, stop.Token));
            return state.WaitUntil(options.Members, Deadline(), stop.Token);
        }
        finally
        {
            stop.Cancel();
            Task.WaitAll([.. pollers], TimeSpan.FromSeconds(60));
        }
    }

    private DateTime Deadline() => DateTime.UtcNow + (options.Timeout ?? TimeSpan.FromMinutes(2));

    private Task StartMember(string group, int index, Assignments state, CancellationToken stop) => Task.Factory.StartNew(() =>
    {
        var config = new ConsumerConfig(baseConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            GroupId = group,
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Latest,
        };
        if (options.Protocol == RebalanceProtocol.Consumer)
        {
            config.GroupProtocol = GroupProtocol.Consumer;
        }
        else
        {
            config.HeartbeatIntervalMs = options.HeartbeatIntervalMs;
            config.PartitionAssignmentStrategy = options.Protocol == RebalanceProtocol.ClassicCooperative
                ? PartitionAssignmentStrategy.CooperativeSticky : PartitionAssignmentStrategy.Range;
        }
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(config)
            .SetPartitionsAssignedHandler((_, added) => state.Add(index, added))
            .SetPartitionsRevokedHandler((_, removed) => state.Remove(index, removed.Select(p => p.TopicPartition)))
            .SetPartitionsLostHandler((_, lost) => state.Remove(index, lost.Select(p => p.TopicPartition)))
            .Build();
        if (index == options.Members - 1) state.Joined();
        consumer.Subscribe(options.Topic);
        while (!stop.IsCancellationRequested) consumer.Consume(20);
        consumer.Close();
    }, stop, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>The members' assignments as their callbacks report them; completion is checked on every change.</summary>
    private sealed class Assignments(int members, int partitions)
    {
        private readonly HashSet<int>[] _owned = [.. Enumerable.Range(0, members).Select(_ => new HashSet<int>())];
        private readonly Lock _lock = new();
        private readonly Stopwatch _clock = new();
        private int _balancedFor = -1;
        private double _balancedAt;

        /// <summary>The last member is about to join: the clock starts at its subscribe, not at its construction.</summary>
        public void Joined()
        {
            lock (_lock) _clock.Restart();
        }

        public void Add(int member, IEnumerable<TopicPartition> added)
        {
            lock (_lock)
            {
                foreach (var tp in added) _owned[member].Add(tp.Partition.Value);
                Check();
            }
        }

        public void Remove(int member, IEnumerable<TopicPartition> removed)
        {
            lock (_lock)
            {
                foreach (var tp in removed) _owned[member].Remove(tp.Partition.Value);
                Check();
            }
        }

        /// <summary>Balanced over the first <paramref name="count"/> members: disjoint, complete, floor or ceil each.</summary>
        private void Check()
        {
            foreach (var count in new[] { members - 1, members })
            {
                var active = _owned.Take(count).ToList();
                if (_owned.Skip(count).Any(o => o.Count > 0)) continue;
                var total = active.Sum(o => o.Count);
                var distinct = active.SelectMany(o => o).Distinct().Count();
                var low = partitions / count;
                var high = (partitions + count - 1) / count;
                if (total == partitions && distinct == partitions && active.All(o => o.Count >= low && o.Count <= high))
                {
                    _balancedFor = count;
                    _balancedAt = _clock.Elapsed.TotalMilliseconds;
                    return;
                }
            }
            _balancedFor = -1;
        }

        /// <summary>Waits until the first <paramref name="count"/> members are balanced; returns the clock then (ms).</summary>
        public double WaitUntil(int count, DateTime deadline, CancellationToken stop)
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_balancedFor == count) return _balancedAt;
                }
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"the group of {count} members did not balance in time");
                stop.ThrowIfCancellationRequested();
                Thread.Sleep(5);
            }
        }
    }
}
