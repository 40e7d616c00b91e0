using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Tests;

/// <summary>
/// The files of kafka-reassign-partitions.sh as <c>tributary partition reassign</c> reads and writes them, and the plans
/// of <c>--generate</c> and <c>broker drain</c>.
/// </summary>
public sealed class ReassignmentPlanTests
{
    [Fact]
    public void KafkasReassignmentFileReadsAndWritesBackTheSame()
    {
        const string json = """{"version":1,"partitions":[{"topic":"orders","partition":1,"replicas":[3,1],"log_dirs":["any","any"]},{"topic":"orders","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}""";
        var moves = ReassignmentJson.ParseReassignment(json);
        Assert.Equal(2, moves.Count);
        Assert.Equal(("orders", 1), (moves[0].Topic, moves[0].Partition));
        Assert.Equal([3, 1], moves[0].Replicas);
        // Written sorted by topic and partition, compact, as Kafka prints it.
        Assert.Equal("""{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"orders","partition":1,"replicas":[3,1],"log_dirs":["any","any"]}]}""",
            ReassignmentJson.Write(moves));
        // log_dirs and version are optional.
        Assert.Single(ReassignmentJson.ParseReassignment("""{"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}"""));
    }

    [Theory]
    [InlineData("""{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}""", "Not supported version field value 2")]
    [InlineData("""{"version":1,"partitions":[]}""", "Partition reassignment list cannot be empty")]
    [InlineData("""{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}""", "contains multiple entries for 1")]
    [InlineData("""{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}""", "different from size of log dirs list")]
    [InlineData("""{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]}]}""", "AlterReplicaLogDirs")]
    [InlineData("""{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}""", "more than once")]
    [InlineData("""{"version":1,"partitions":[{"topic":"t","replicas":[1]}]}""", "needs a \"partition\"")]
    [InlineData("not json", "not valid JSON")]
    public void BadReassignmentFilesAreRefusedWithTheReason(string json, string reason) =>
        Assert.Contains(reason, Assert.Throws<CliException>(() => ReassignmentJson.ParseReassignment(json)).Message);

    [Fact]
    public void TopicsToMoveFileLists()
    {
        Assert.Equal(["a", "b"], ReassignmentJson.ParseTopicsToMove("""{"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}"""));
        Assert.Contains("duplicate", Assert.Throws<CliException>(() => ReassignmentJson.ParseTopicsToMove("""{"topics":[{"topic":"a"},{"topic":"a"}]}""")).Message);
        Assert.Contains("no topics", Assert.Throws<CliException>(() => ReassignmentJson.ParseTopicsToMove("""{"version":1,"topics":[]}""")).Message);
    }

    private static readonly Dictionary<(string, int), int[]> Current = new()
    {
        [("a", 0)] = [1, 2],
        [("a", 1)] = [2, 3],
        [("a", 2)] = [3, 1],
        [("b", 0)] = [2],
    };

    [Fact]
    public void GenerateKeepsEachTopicsReplicationFactorOnTheGivenBrokers()
    {
        var proposed = ReassignmentPlanner.Generate(Current, ["a", "b"], [new(4, null), new(5, null), new(6, null)]);
        Assert.Equal(4, proposed.Count);
        Assert.All(proposed.Where(m => m.Topic == "a"), m => Assert.Equal(2, m.Replicas.Distinct().Count()));
        Assert.Single(proposed.Single(m => m.Topic == "b").Replicas);
        Assert.All(proposed, m => Assert.All(m.Replicas, r => Assert.Contains(r, new[] { 4, 5, 6 })));
        Assert.Contains("not found", Assert.Throws<CliException>(() => ReassignmentPlanner.Generate(Current, ["zzz"], [new(1, null)])).Message);
        Assert.Contains("replication factor", Assert.Throws<CliException>(() => ReassignmentPlanner.Generate(Current, ["a"], [new(4, null)])).Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void DrainReplacesEveryReplicaOfTheBrokerAndPutsTheNewOneLast()
    {
        var (moves, problems) = ReassignmentPlanner.Drain(Current, [new(1, null), new(2, null), new(3, null), new(4, null)], 2);
        Assert.Empty(problems);
        Assert.Equal(["a-0", "a-1", "b-0"], moves.Select(m => $"{m.Topic}-{m.Partition}"));
        Assert.All(moves, m => Assert.DoesNotContain(2, m.Replicas));
        Assert.All(moves, m => Assert.Equal(Current[(m.Topic, m.Partition)].Length, m.Replicas.Length));
        // The replica already in sync stays first (the preferred leader); broker 4 holds nothing, so it takes them.
        Assert.Equal([1, 4], moves[0].Replicas);
        Assert.Equal([3, 4], moves[1].Replicas);
    }

    [Fact]
    public void DrainPrefersTheDrainedBrokersRackAndNamesWhatCannotMove()
    {
        var brokers = new BrokerSlot[] { new(1, "r1"), new(2, "r2"), new(3, "r1"), new(4, "r2") };
        var (moves, _) = ReassignmentPlanner.Drain(new Dictionary<(string, int), int[]> { [("t", 0)] = [1, 2] }, brokers, 2);
        Assert.Equal([1, 4], moves.Single().Replicas); // 4 shares broker 2's rack: the partition still spans both racks

        var (none, problems) = ReassignmentPlanner.Drain(new Dictionary<(string, int), int[]> { [("t", 0)] = [1, 2, 3] }, [new(1, null), new(2, null), new(3, null)], 2);
        Assert.Empty(none);
        Assert.Contains("t-0", Assert.Single(problems));
    }
}
