using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker;
using Tributary.Cli.Kafka;

namespace Tributary.Cli.Tests;

/// <summary>
/// <c>tributary group list | describe | seek | delete</c> run as the real executable against an in-process broker:
/// exit codes, the tables users read, and the offsets the broker holds afterwards (checked with an admin client, not
/// with the CLI's own output).
///
/// The topic has 3 partitions of 10 records each; record i of every partition is stamped start + i hours, with start
/// 10 hours ago, so time-based seeks have exact expected offsets.
/// </summary>
[Trait("Category", "Slow")]
public sealed class GroupCommandTests : IAsyncLifetime
{
    private const string Topic = "cli-seek";
    private const int Partitions = 3;
    private const int PerPartition = 10;
    private TributaryServer _server = null!;
    private DateTimeOffset _start;

    public async Task InitializeAsync()
    {
        NativeLibrdkafka.EnsureLoaded();
        _server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = "0",
            ["group.min.session.timeout.ms"] = "500",
        });
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = Topic, NumPartitions = Partitions, ReplicationFactor = 1 }]);
        _start = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddHours(-10).ToUnixTimeMilliseconds() / 1000 * 1000);
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _server.BootstrapServers }).Build();
        for (var p = 0; p < Partitions; p++)
            for (var i = 0; i < PerPartition; i++)
                producer.Produce(new TopicPartition(Topic, p), new Message<string, string>
                {
                    Key = $"k{i}",
                    Value = $"v{i}",
                    Timestamp = new Timestamp(_start.AddHours(i)),
                });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }

    public async Task DisposeAsync() => await _server.StopAsync();

    [Fact]
    public async Task ListDescribeSeekEveryModeAndDelete()
    {
        const string group = "cli-group";
        using (var member = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = _server.BootstrapServers,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
        }).Build())
        {
            member.Subscribe(Topic);
            var seen = 0;
            Eventually.True(() =>
            {
                for (var r = member.Consume(TimeSpan.FromMilliseconds(100)); r is not null && seen < Partitions * 7; r = seen < Partitions * 7 ? member.Consume(TimeSpan.FromMilliseconds(100)) : null)
                {
                    // Stop each partition at offset 7 so the group lags by 3 per partition.
                    if (r.Offset.Value < 7) seen++;
                    if (r.Offset.Value == 6) member.Commit([new TopicPartitionOffset(r.TopicPartition, 7)]);
                }
                return seen == Partitions * 7;
            }, TimeSpan.FromSeconds(60), $"{Partitions * 7} records", () => $"consumed {seen}");

            var list = await Cli("group", "list");
            Assert.Equal(0, list.Exit);
            Assert.Contains(Rows(list.Out), row => row[0] == group && row[1] == "Stable");

            var described = await Cli("group", "describe", group);
            Assert.Equal(0, described.Exit);
            Assert.Contains($"{group}: Stable, 1 member(s)", described.Out);
            Assert.Contains(member.MemberId, described.Out);
            for (var p = 0; p < Partitions; p++)
                Assert.Contains(Rows(described.Out), row => row.Length == 6 && row[0] == Topic && row[1] == p.ToString(CultureInfo.InvariantCulture)
                    && row[2] == "7" && row[3] == "10" && row[4] == "3" && row[5] == member.MemberId);
            Assert.Contains("total lag: 9", described.Out);

            // Active members: seek and delete are refused, and nothing moves.
            var refused = await Cli("group", "seek", group, "--topic", Topic, "--to-earliest");
            Assert.Equal(1, refused.Exit);
            Assert.Contains($"group '{group}' has 1 active member(s)", refused.Err);
            Assert.Contains("stop its consumers", refused.Err);
            var notDeleted = await Cli("group", "delete", group);
            Assert.Equal(1, notDeleted.Exit);
            Assert.Contains("NonEmptyGroup", notDeleted.Err);
            Assert.Equal(new long[] { 7, 7, 7 }, await CommittedAsync(group));
            member.Close();
        }

        var empty = await Cli("group", "describe", group);
        Assert.Equal(0, empty.Exit);
        Assert.Contains($"{group}: Empty, 0 member(s)", empty.Out);

        // --dry-run shows the plan and commits nothing.
        var dry = await Cli("group", "seek", group, "--topic", Topic, "--to-earliest", "--dry-run");
        Assert.Equal(0, dry.Exit);
        AssertPlan(dry.Out, [(0, "7", 0), (1, "7", 0), (2, "7", 0)]);
        Assert.Contains("dry run: nothing committed", dry.Err);
        Assert.Equal(new long[] { 7, 7, 7 }, await CommittedAsync(group));

        await Seek(group, [(0, "7", 0), (1, "7", 0), (2, "7", 0)], "--to-earliest");
        await Seek(group, [(0, "0", 10), (1, "0", 10), (2, "0", 10)], "--to-latest");
        await Seek(group, [(1, "10", 4)], "--to-offset", "4", "--partition", "1");
        Assert.Equal(new long[] { 10, 4, 10 }, await CommittedAsync(group));
        await Seek(group, [(0, "10", 10), (2, "10", 10)], "--to-offset", "999", "--partition", "0", "--partition", "2"); // clamped to the log end
        await Seek(group, [(0, "10", 7), (1, "4", 1), (2, "10", 7)], "--shift-by", "-3");
        await Seek(group, [(0, "7", 2), (1, "1", 0), (2, "7", 2)], "--shift-by", "-5"); // partition 1 clamped to the log start
        // The first record at or after the time: exactly at record 5's stamp, and one millisecond after it.
        await Seek(group, [(0, "2", 5), (1, "0", 5), (2, "2", 5)], "--to-datetime", _start.AddHours(5).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
        await Seek(group, [(2, "5", 6)], "--to-datetime", _start.AddHours(5).AddMilliseconds(1).ToString("O", CultureInfo.InvariantCulture), "--partition", "2");
        // Record i is stamped 10 - i hours ago (less the seconds since start): 4.5 hours ago falls between records 5 and 6.
        await Seek(group, [(0, "5", 6), (1, "5", 6), (2, "6", 6)], "--by-duration", "-PT4H30M");
        // Later than every record: the log end.
        await Seek(group, [(0, "6", 10)], "--by-duration", "PT1H", "--partition", "0");
        Assert.Equal(new long[] { 10, 6, 6 }, await CommittedAsync(group));

        var bad = await Cli("group", "seek", group, "--topic", Topic, "--to-earliest", "--to-latest");
        Assert.Equal(1, bad.Exit);
        Assert.Contains("give exactly one of", bad.Err);
        var noPartition = await Cli("group", "seek", group, "--topic", Topic, "--to-earliest", "--partition", "9");
        Assert.Equal(1, noPartition.Exit);
        Assert.Contains($"topic '{Topic}' has no partition 9", noPartition.Err);

        var deleted = await Cli("group", "delete", group);
        Assert.Equal(0, deleted.Exit);
        Assert.Contains($"{group}: deleted", deleted.Out);
        Assert.DoesNotContain(Rows((await Cli("group", "list")).Out), row => row[0] == group);
        Assert.Equal(new long[] { -1, -1, -1 }, await CommittedAsync(group));
        var again = await Cli("group", "delete", group);
        Assert.Equal(1, again.Exit);
        Assert.Contains("GroupIdNotFound", again.Err);
    }

    /// <summary>Runs a seek, checks the plan it prints and then the offsets the broker holds for those partitions.</summary>
    private async Task Seek(string group, (int Partition, string Current, long Target)[] plan, params string[] mode)
    {
        var result = await Cli(["group", "seek", group, "--topic", Topic, .. mode]);
        Assert.True(result.Exit == 0, $"seek {string.Join(' ', mode)}: exit {result.Exit}: {result.Err}");
        AssertPlan(result.Out, plan);
        Assert.Contains($"{group}: {plan.Length} partition(s) of {Topic} moved", result.Out);
        var committed = await CommittedAsync(group);
        foreach (var (partition, _, target) in plan) Assert.Equal(target, committed[partition]);
    }

    private static void AssertPlan(string output, (int Partition, string Current, long Target)[] plan)
    {
        var rows = Rows(output).Where(r => r.Length == 4 && r[0] == Topic).ToList();
        Assert.Equal(plan.Length, rows.Count);
        foreach (var (partition, current, target) in plan)
            Assert.Contains(rows, r => r[1] == partition.ToString(CultureInfo.InvariantCulture) && r[2] == current && r[3] == target.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>The group's committed offset of each partition, -1 where there is none.</summary>
    private async Task<long[]> CommittedAsync(string group)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build();
        var result = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group,
            [.. Enumerable.Range(0, Partitions).Select(p => new TopicPartition(Topic, p))])]);
        return [.. result.Single().Partitions.OrderBy(p => p.Partition.Value).Select(p => p.Offset.IsSpecial ? -1 : p.Offset.Value)];
    }

    private static List<string[]> Rows(string output) =>
        [.. output.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(r => r.Length > 0)];

    /// <summary>Runs the built <c>tributary</c> executable with the broker's address.</summary>
    private Task<(int Exit, string Out, string Err)> Cli(params string[] args) => Cli(args.AsEnumerable());

    private Task<(int Exit, string Out, string Err)> Cli(IEnumerable<string> args) => CliProcess.RunAsync(_server.BootstrapServers, args);
}
