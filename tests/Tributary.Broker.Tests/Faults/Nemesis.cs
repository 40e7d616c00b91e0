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
            var kind = i < plan.Count ? plan[i] : _random.Next(12) switch { < 5 => FaultKind.Kill, < 9 => FaultKind.Pause, < 11 => FaultKind.EtcdKill, _ => FaultKind.ClusterKill };
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
