using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Tests.Faults;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// The fault suite, after Jepsen's Kafka workload: three `tributary serve` processes over three etcd members, two topics with
/// replication factor 3 and min.insync.replicas=2, idempotent acks=all producers writing unique values, transactional
/// producers committing and aborting transactions across partitions, and a consumer group committing its position,
/// while a seeded nemesis kills (SIGKILL) and restarts brokers, pauses them (SIGSTOP) past their session timeout,
/// kills the whole cluster, kills an etcd member, and breaks the network through proxies (one broker cut off from the
/// others, one cut off from etcd, slowed links, reset connections; see <see cref="NetworkLinks"/>). After healing, every partition is read from the beginning and the history is checked
/// (<see cref="FaultChecker"/>, <see cref="FaultTransactions"/>, <see cref="FaultGroupCommits"/>): no acknowledged
/// write lost, none duplicated, each where its acknowledgement said, offsets increasing; no committed transaction
/// lost, no aborted one read, none half visible; no group commit gone backwards. Then the brokers stop cleanly and each
/// partition's segment files must be byte for byte the same on all three data directories.
/// <para>
/// The short form (CI) injects two kills, a pause, a full-cluster kill, an etcd member kill and each network fault once in one run. The long form runs
/// <c>TRIBUTARY_FAULT_RUNS</c> runs, each injecting random faults for <c>TRIBUTARY_FAULT_SECONDS</c>;
/// <c>TRIBUTARY_FAULT_SEED</c> replays a run (the seed of each run is printed). See README.md, "Fault suite".
/// </para>
/// </summary>
[Trait("Category", "Slow")]
[Trait("Category", "Cluster")]
public sealed class ClusterFaultTests(ITestOutputHelper output)
{
    private const string Topic = "faults";
    private const string TxnTopic = "faults-txn";
    private const int TxnWriters = 2;
    private const int Partitions = 3;
    private const int Writers = 2;
    private static readonly TimeSpan SessionTimeout = TimeSpan.FromMilliseconds(3500);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private static readonly FaultKind[] Required =
    [
        FaultKind.Kill, FaultKind.Kill, FaultKind.Pause, FaultKind.ClusterKill, FaultKind.EtcdKill,
        FaultKind.Partition, FaultKind.EtcdIsolation, FaultKind.SlowLinks, FaultKind.DropLinks,
    ];

    private static readonly Dictionary<string, string> Settings = new()
    {
        ["broker.session.timeout.ms"] = SessionTimeout.TotalMilliseconds.ToString(CultureInfo.InvariantCulture),
        ["replica.lag.time.max.ms"] = "3000",
        ["replica.fetch.wait.max.ms"] = "100",
        ["schema.registry.enable"] = "false",
        ["log.level"] = "info",
        // Fewer coordinator partitions: a quicker start and a shorter log; the suite does not use groups.
        ["offsets.topic.num.partitions"] = "3",
        ["transaction.state.log.num.partitions"] = "3",
    };

    [Fact]
    public async Task Acknowledged_writes_survive_kills_pauses_and_a_cluster_restart()
    {
        var runs = EnvInt("TRIBUTARY_FAULT_RUNS") ?? 1;
        var duration = TimeSpan.FromSeconds(EnvInt("TRIBUTARY_FAULT_SECONDS") ?? 0);
        var seed = EnvInt("TRIBUTARY_FAULT_SEED") ?? Random.Shared.Next();
        var clock = Stopwatch.StartNew();
        var injected = Enum.GetValues<FaultKind>().ToDictionary(k => k, _ => 0);
        var results = new List<FaultChecker.Result>();
        var divergent = new List<string>();
        for (var run = 0; run < runs; run++)
        {
            var runSeed = unchecked(seed + run);
            output.WriteLine($"run {run + 1}/{runs}: seed {runSeed} (replay with TRIBUTARY_FAULT_SEED={runSeed})");
            var (result, faults, differences) = await RunAsync(runSeed, duration);
            foreach (var (kind, count) in faults) injected[kind] += count;
            results.Add(result);
            divergent.AddRange(differences.Select(d => $"seed {runSeed}: {d}"));
            output.WriteLine($"run {run + 1}: {result.Summary}, divergent replicas {differences.Count}");
            if (result.Anomalies > 0) output.WriteLine($"seed {runSeed}: {result.Examples()}");
        }

        var anomalies = results.Sum(r => r.Anomalies) + divergent.Count;
        output.WriteLine($"fault suite: {runs} run(s), faults {string.Join(", ", injected.Select(f => $"{f.Key} {f.Value}"))}, " +
            $"records acknowledged {results.Sum(r => r.Acknowledged)}, failed {results.Sum(r => r.Failed)}, checked {results.Sum(r => r.Read)}, " +
            $"anomalies {anomalies}, time {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(anomalies == 0, $"{anomalies} anomalies (seed {seed}):\n" +
            string.Join("\n", results.Where(r => r.Anomalies > 0).Select(r => r.Summary + "\n" + r.Examples()).Concat(divergent)));
    }

    private async Task<(FaultChecker.Result Result, Dictionary<FaultKind, int> Faults, List<string> Divergent)> RunAsync(int seed, TimeSpan duration)
    {
        await using var cluster = await FaultCluster.StartAsync(output, Settings);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync(new[] { Topic, TxnTopic }.Select(name => new TopicSpecification
            {
                Name = name,
                NumPartitions = Partitions,
                ReplicationFactor = 3,
                Configs = new() { ["min.insync.replicas"] = "2" },
            }));
        }
        await FullyReplicatedAsync(cluster);

        var history = new FaultHistory();
        var workload = new FaultWorkload(cluster.BootstrapServers, Topic, Partitions, history);
        var transactions = new FaultTransactions(cluster.BootstrapServers, TxnTopic, Partitions);
        var group = new FaultGroupCommits(cluster.BootstrapServers, Topic, Partitions);
        var nemesis = new Nemesis(cluster, Topic, Partitions, seed, SessionTimeout, output.WriteLine);
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => workload.WriteAsync(w, stop.Token)))
            .Concat(Enumerable.Range(0, TxnWriters).Select(w => Task.Run(() => transactions.WriteAsync(w, stop.Token))))
            .Append(Task.Run(() => group.Run(stop.Token)))
            .ToList();
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            await nemesis.RunAsync(Required, duration);
            await cluster.HealAsync();
            output.WriteLine("healed: every node runs");
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }
        output.WriteLine($"writers stopped ({workload.FatalErrors} idempotent and {transactions.FatalErrors} transactional producers replaced after a fatal error)");

        await FullyReplicatedAsync(cluster);
        workload.ReadAll(Timeout);
        transactions.ReadAll(Timeout);
        group.CheckFinal(Timeout);
        var result = FaultChecker.Check(history, [.. transactions.Check(), .. group.Anomalies]);
        output.WriteLine($"{transactions.Summary}; {group.Summary}");
        if (result.Anomalies > 0)
        {
            // What the producers saw of their ids, epochs and sequences, to explain a duplicate or a loss.
            var idempotence = new System.Text.RegularExpressions.Regex("pid|epoch|sequence|seq |drain|duplicate|out.of.order|unknown.producer|fatal",
                System.Text.RegularExpressions.RegexOptions.IgnoreCase);
            foreach (var line in workload.ClientLog.Where(l => idempotence.IsMatch(l)).TakeLast(400)) output.WriteLine("client " + line);
        }

        // Followers fetch continuously; give them a moment to hold the leader's last batch before the clean stop. Not
        // agreeing yet is no failure here: the comparison that counts is the one after the stop.
        for (var settle = Stopwatch.StartNew(); settle.Elapsed < TimeSpan.FromSeconds(20) && Divergence(cluster).Count > 0;)
            await Task.Delay(200);
        await cluster.StopCleanlyAsync();
        return (result, nemesis.Injected, Divergence(cluster));
    }

    /// <summary>Waits until every partition has a leader and all three replicas in its ISR.</summary>
    private async Task FullyReplicatedAsync(FaultCluster cluster)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers })
            .SetLogHandler((_, _) => { }).Build();
        await Eventually.ValueAsync(() =>
        {
            try
            {
                var metadata = admin.GetMetadata(TimeSpan.FromSeconds(5));
                return metadata.Topics.Where(t => t.Topic is Topic or TxnTopic).SelectMany(t => t.Partitions).ToList();
            }
            catch (KafkaException)
            {
                return [];
            }
        }, p => p.Count == 2 * Partitions && p.All(q => q.Leader > 0 && q.InSyncReplicas.Length == FaultCluster.Size), Timeout,
            "every partition to have all three replicas in sync",
            p => string.Join("; ", p.Select(q => $"{q.PartitionId}: leader {q.Leader} isr [{string.Join(",", q.InSyncReplicas)}]")));
    }

    /// <summary>Each partition whose segment bytes differ between the three data directories, with the digests.</summary>
    private static List<string> Divergence(FaultCluster cluster)
    {
        var divergent = new List<string>();
        foreach (var topic in new[] { Topic, TxnTopic })
            for (var p = 0; p < Partitions; p++)
            {
                var digests = Enumerable.Range(1, FaultCluster.Size).Select(n => (Node: n, Digest: cluster.LogDigest(n, topic, p))).ToList();
                if (digests.Select(d => d.Digest).Distinct().Count() > 1 || digests.Any(d => d.Digest is null))
                    divergent.Add($"{topic}-{p}: " + string.Join(", ", digests.Select(d => $"node {d.Node} {d.Digest?.Bytes} bytes {d.Digest?.Sha256[..12]}")));
            }
        return divergent;
    }

    private static int? EnvInt(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;
}
