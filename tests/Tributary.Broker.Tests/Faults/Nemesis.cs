using System.Diagnostics;
using Confluent.Kafka;

namespace Tributary.Broker.Tests.Faults;

public enum FaultKind
{
    /// <summary>SIGKILL of one broker (leader or not), then a restart on the same data directory.</summary>
    Kill,

    /// <summary>SIGSTOP of one broker for longer than the session timeout (its lease ends), then SIGCONT.</summary>
    Pause,

    /// <summary>SIGKILL of every broker at once, then a restart of all.</summary>
    ClusterKill,

    /// <summary>SIGKILL of one of the three etcd members (the brokers' metadata store keeps its quorum), then a restart.</summary>
    EtcdKill,

    /// <summary>One broker cut off from the other brokers (both ways) but not from etcd or the clients, past the ISR lag time.</summary>
    Partition,

    /// <summary>One broker cut off from etcd (its lease ends, its leaderships move) but not from the other brokers or the clients.</summary>
    EtcdIsolation,

    /// <summary>Every link of one broker to the others delayed by 100-800 ms per chunk.</summary>
    SlowLinks,

    /// <summary>Every connection between one broker and the others reset, again and again, for a while.</summary>
    DropLinks,
}

/// <summary>
/// Injects faults into a <see cref="FaultCluster"/> from a seeded random generator, so a failing run is replayed with
/// its seed. The required faults come first, in a shuffled order; then random ones follow until the run's duration
/// has passed. Each fault is held for a random while and undone, and a random quiet spell follows, during which the
/// cluster recovers (or does not) on its own. Every fault is written to the test log with the leaders it hit.
/// </summary>
internal sealed class Nemesis(FaultCluster cluster, string topic, int partitions, int seed, TimeSpan sessionTimeout, Action<string> log)
{
    private readonly Random _random = new(seed);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public Dictionary<FaultKind, int> Injected { get; } = Enum.GetValues<FaultKind>().ToDictionary(k => k, _ => 0);

    public async Task RunAsync(IReadOnlyList<FaultKind> required, TimeSpan duration)
    {
        var plan = required.OrderBy(_ => _random.Next()).ToList();
        for (var i = 0; i < plan.Count || _clock.Elapsed < duration; i++)
        {
            // Beyond the required faults a whole-cluster kill is rarer than the others.
            var kind = i < plan.Count ? plan[i] : _random.Next(20) switch
            {
                < 5 => FaultKind.Kill,
                < 8 => FaultKind.Pause,
                < 10 => FaultKind.EtcdKill,
                < 13 => FaultKind.Partition,
                < 15 => FaultKind.EtcdIsolation,
                < 17 => FaultKind.SlowLinks,
                < 19 => FaultKind.DropLinks,
                _ => FaultKind.ClusterKill,
            };
            await InjectAsync(kind);
            Injected[kind]++;
            await Task.Delay(TimeSpan.FromMilliseconds(_random.Next(1500, 4000)));
        }
    }

    private async Task InjectAsync(FaultKind kind)
    {
        // Half the time the victim is a leader (the interesting case: a leadership must move), else any node. The
        // draw does not depend on the metadata, so a seed replays the same choices.
        var leaderOf = _random.Next(2) == 0 ? _random.Next(partitions) : -1;
        var any = _random.Next(1, FaultCluster.Size + 1);
        var (node, leaderships) = Victim(leaderOf, any);
        switch (kind)
        {
            case FaultKind.Kill:
                {
                    var down = TimeSpan.FromMilliseconds(_random.Next(200, 3000));
                    Log($"kill -9 node {node} ({leaderships}), down for {down.TotalMilliseconds:F0} ms");
                    cluster.Kill(node);
                    await Task.Delay(down);
                    await cluster.RestartAsync(node);
                    Log($"node {node} restarted");
                    break;
                }
            case FaultKind.Pause:
                {
                    var paused = sessionTimeout + TimeSpan.FromMilliseconds(_random.Next(1000, 3000));
                    Log($"SIGSTOP node {node} ({leaderships}) for {paused.TotalMilliseconds:F0} ms");
                    cluster.Pause(node);
                    await Task.Delay(paused);
                    cluster.Resume(node);
                    Log($"SIGCONT node {node}");
                    break;
                }
            case FaultKind.EtcdKill:
                {
                    var member = _random.Next(1, FaultEtcd.Members + 1);
                    var down = TimeSpan.FromMilliseconds(_random.Next(1000, 5000));
                    Log($"kill -9 etcd member {member}, down for {down.TotalMilliseconds:F0} ms");
                    cluster.Etcd.Kill(member);
                    await Task.Delay(down);
                    await cluster.Etcd.RestartAsync(member);
                    Log($"etcd member {member} restarted");
                    break;
                }
            case FaultKind.Partition:
                {
                    var held = sessionTimeout + TimeSpan.FromMilliseconds(_random.Next(500, 3000));
                    Log($"partition: node {node} ({leaderships}) cut off from the other brokers for {held.TotalMilliseconds:F0} ms");
                    foreach (var other in Others(node)) cluster.Links.Cut(node, other);
                    await Task.Delay(held);
                    cluster.Links.HealAll();
                    Log("partition healed");
                    break;
                }
            case FaultKind.EtcdIsolation:
                {
                    var held = sessionTimeout + TimeSpan.FromMilliseconds(_random.Next(500, 3000));
                    Log($"node {node} ({leaderships}) cut off from etcd for {held.TotalMilliseconds:F0} ms");
                    cluster.Links.Cut(node, NetworkLinks.Etcd);
                    await Task.Delay(held);
                    cluster.Links.HealAll();
                    Log($"node {node} reaches etcd again");
                    break;
                }
            case FaultKind.SlowLinks:
                {
                    var delay = TimeSpan.FromMilliseconds(_random.Next(100, 800));
                    var held = TimeSpan.FromMilliseconds(_random.Next(2000, 5000));
                    Log($"node {node} ({leaderships}): links to the other brokers delayed {delay.TotalMilliseconds:F0} ms for {held.TotalMilliseconds:F0} ms");
                    foreach (var other in Others(node)) cluster.Links.Slow(node, other, delay);
                    await Task.Delay(held);
                    cluster.Links.HealAll();
                    Log("links at full speed again");
                    break;
                }
            case FaultKind.DropLinks:
                {
                    var held = TimeSpan.FromMilliseconds(_random.Next(2000, 5000));
                    Log($"node {node} ({leaderships}): connections to the other brokers reset for {held.TotalMilliseconds:F0} ms");
                    var resets = 0;
                    for (var clock = Stopwatch.StartNew(); clock.Elapsed < held;)
                    {
                        foreach (var other in Others(node)) resets += cluster.Links.Reset(node, other);
                        await Task.Delay(TimeSpan.FromMilliseconds(_random.Next(100, 600)));
                    }
                    Log($"{resets} connections reset");
                    break;
                }
            case FaultKind.ClusterKill:
                {
                    var down = TimeSpan.FromMilliseconds(_random.Next(200, 2000));
                    Log($"kill -9 every node, down for {down.TotalMilliseconds:F0} ms");
                    for (var n = 1; n <= FaultCluster.Size; n++) cluster.Kill(n);
                    await Task.Delay(down);
                    await Task.WhenAll(Enumerable.Range(1, FaultCluster.Size).Select(cluster.RestartAsync));
                    Log("every node restarted");
                    break;
                }
        }
    }

    private static IEnumerable<int> Others(int node) => Enumerable.Range(1, FaultCluster.Size).Where(n => n != node);

    private void Log(string message) => log($"nemesis {_clock.Elapsed.TotalSeconds,6:F1}s: {message}");

    /// <summary>
    /// The leader of partition <paramref name="leaderOf"/> (when not -1 and known) or else <paramref name="any"/>, with
    /// the partitions it leads, as the cluster's metadata says now (best effort).
    /// </summary>
    private (int Node, string Leaderships) Victim(int leaderOf, int any)
    {
        try
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers })
                .SetLogHandler((_, _) => { }).Build();
            var described = admin.GetMetadata(topic, TimeSpan.FromSeconds(2)).Topics.SelectMany(t => t.Partitions).ToList();
            var node = described.FirstOrDefault(p => p.PartitionId == leaderOf) is { Leader: > 0 } led ? led.Leader : any;
            var leads = described.Where(p => p.Leader == node).Select(p => p.PartitionId).Order().ToList();
            return (node, leads.Count == 0 ? "leads no partition" : $"leader of partitions {string.Join(",", leads)}");
        }
        catch (KafkaException e)
        {
            return (any, $"leadership unknown: {e.Error.Reason}");
        }
    }
}
