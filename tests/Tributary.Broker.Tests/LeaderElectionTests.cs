using Tributary.Broker.Cluster;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests;

/// <summary>
/// The election rules of <see cref="LeaderElection"/> (Kafka's controller: ReplicationControlManager.electLeader and
/// PartitionChangeBuilder) and the preferred-leader rebalance's choice and timer, on injected state: no broker, no etcd.
/// </summary>
public sealed class LeaderElectionTests
{
    private static readonly IReadOnlySet<int> All = new HashSet<int> { 1, 2, 3 };

    private static PartitionState State(int leader, int[] isr, int[]? replicas = null) => new(replicas ?? [1, 2, 3], isr, leader, 7, 20);

    [Fact]
    public void PreferredMovesLeadershipToTheFirstReplicaWhenItIsAliveAndInSync()
    {
        var decision = LeaderElection.Decide(State(2, [1, 2, 3]), ElectionType.Preferred, All);
        Assert.Equal(ErrorCode.None, decision.Error);
        Assert.Equal((1, 8, 21), (decision.Next!.Leader, decision.Next.LeaderEpoch, decision.Next.PartitionEpoch));
        Assert.Equal([1, 2, 3], decision.Next.Isr); // a preferred election keeps the ISR
    }

    [Fact]
    public void PreferredIsNotNeededWhenThePreferredReplicaLeads()
    {
        var decision = LeaderElection.Decide(State(1, [1, 2, 3]), ElectionType.Preferred, All);
        Assert.Equal(ErrorCode.ElectionNotNeeded, decision.Error);
        Assert.Null(decision.Next);
        Assert.Equal("Leader election not needed for topic partition.", decision.Message);
    }

    [Theory]
    [InlineData(new[] { 2, 3 }, new[] { 1, 2, 3 })] // the preferred replica is out of the ISR
    [InlineData(new[] { 1, 2, 3 }, new[] { 2, 3 })] // the preferred replica's broker is gone
    public void PreferredIsNotAvailableWhenThePreferredReplicaCannotLead(int[] isr, int[] alive)
    {
        var decision = LeaderElection.Decide(State(2, isr), ElectionType.Preferred, alive.ToHashSet());
        Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, decision.Error);
        Assert.Null(decision.Next);
        Assert.Equal("The preferred leader was not available.", decision.Message);
    }

    [Fact]
    public void PreferredOnALeaderlessPartitionTakesTheNextValidReplica()
    {
        // As Kafka's PartitionChangeBuilder: the current leader is not valid, so the first valid replica after the preferred one leads.
        var decision = LeaderElection.Decide(State(-1, [1, 3]), ElectionType.Preferred, new HashSet<int> { 2, 3 });
        Assert.Equal(ErrorCode.None, decision.Error);
        Assert.Equal(3, decision.Next!.Leader);
        Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, LeaderElection.Decide(State(-1, [1]), ElectionType.Preferred, new HashSet<int> { 2, 3 }).Error);
    }

    [Fact]
    public void ABrokerInControlledShutdownIsNotEligible()
    {
        var image = new MetadataImage("c", 2, 1,
            [new BrokerRegistration(1, "h", 1, null, Guid.Empty, ShuttingDown: true), new BrokerRegistration(2, "h", 2, null, Guid.Empty)], []);
        var eligible = LeaderElection.EligibleBrokers(image);
        Assert.Equal([2], eligible);
        Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, LeaderElection.Decide(State(2, [1, 2], [1, 2]), ElectionType.Preferred, eligible).Error);
    }

    [Fact]
    public void UncleanIsNotNeededWhileThePartitionHasALeader()
    {
        var decision = LeaderElection.Decide(State(2, [2]), ElectionType.Unclean, All);
        Assert.Equal(ErrorCode.ElectionNotNeeded, decision.Error);
    }

    [Fact]
    public void UncleanPrefersAnInSyncReplicaAndOtherwiseTakesAnyLiveOneAlone()
    {
        var clean = LeaderElection.Decide(State(-1, [3, 2]), ElectionType.Unclean, new HashSet<int> { 2, 3 });
        Assert.Equal(2, clean.Next!.Leader); // replica order among the valid ones
        Assert.Equal([3, 2], clean.Next.Isr);

        var unclean = LeaderElection.Decide(State(-1, [1]), ElectionType.Unclean, new HashSet<int> { 3, 2 });
        Assert.Equal(ErrorCode.None, unclean.Error);
        Assert.Equal(2, unclean.Next!.Leader);
        Assert.Equal([2], unclean.Next.Isr); // the new leader's log is the truth now
        Assert.Equal((8, 21), (unclean.Next.LeaderEpoch, unclean.Next.PartitionEpoch));
    }

    [Fact]
    public void UncleanWithNoLiveReplicaIsEligibleLeadersNotAvailable()
    {
        var decision = LeaderElection.Decide(State(-1, [1], [1, 2]), ElectionType.Unclean, new HashSet<int> { 3 });
        Assert.Equal(ErrorCode.EligibleLeadersNotAvailable, decision.Error);
        Assert.Equal("Eligible topic partition leaders are not available.", decision.Message);
    }

    private static MetadataImage Image(IEnumerable<int> brokers, params (string Name, PartitionState[] Partitions)[] topics) =>
        new("c", brokers.Min(), 1, brokers.Select(b => new BrokerRegistration(b, "h", b, null, Guid.Empty)),
            topics.Select(t => new TopicInfo(t.Name, Guid.NewGuid(), t.Partitions, new Dictionary<string, string>())));

    [Fact]
    public void RebalanceMovesOnlyTheBrokersWhoseImbalanceExceedsThePercentage()
    {
        // Broker 1 prefers 10 partitions and leads 8 (ratio 0.2); broker 2 prefers 10 and leads 9 (0.1, not above 10 %).
        var one = Enumerable.Range(0, 10).Select(i => State(i < 2 ? 3 : 1, [1, 2, 3], [1, 2, 3])).ToArray();
        var two = Enumerable.Range(0, 10).Select(i => State(i < 1 ? 3 : 2, [1, 2, 3], [2, 3, 1])).ToArray();
        var image = Image([1, 2, 3], ("one", one), ("two", two));
        var moves = LeaderElection.RebalanceCandidates(image, LeaderElection.EligibleBrokers(image), imbalancePercentage: 10);
        Assert.Equal([("one", 0), ("one", 1)], moves.Select(m => (m.Topic.Name, m.Partition)));
        // At 0 % (what KRaft controllers do) every partition not led by its preferred replica moves.
        moves = LeaderElection.RebalanceCandidates(image, LeaderElection.EligibleBrokers(image), imbalancePercentage: 0);
        Assert.Equal([("one", 0), ("one", 1), ("two", 0)], moves.Select(m => (m.Topic.Name, m.Partition)));
        // At 20 % nothing is above the line.
        Assert.Empty(LeaderElection.RebalanceCandidates(image, LeaderElection.EligibleBrokers(image), imbalancePercentage: 20));
    }

    [Fact]
    public void RebalanceSkipsPreferredReplicasThatAreDeadOrOutOfSync()
    {
        var image = Image([1, 2], ("t", [State(2, [2, 3]), State(2, [1, 2]), State(2, [1, 2], [3, 2, 1])]));
        var moves = LeaderElection.RebalanceCandidates(image, LeaderElection.EligibleBrokers(image), imbalancePercentage: 0);
        Assert.Equal([1], moves.Select(m => m.Partition)); // 0: 1 out of the ISR; 2: broker 3 not registered
    }

    [Fact]
    public async Task ElectAsyncDecidesAgainWhenItsWriteLosesToAnotherChange()
    {
        var store = new MemoryMetadataStore(Image([1, 2, 3], ("t", [State(2, [1, 2, 3])])));
        // The first write meets a concurrent ISR change (as a leader's shrink would be): the election is decided again on it.
        store.BeforeAlter = (current, _) =>
        {
            store.BeforeAlter = null;
            store.Replace("t", 0, current with { Isr = [1, 2], PartitionEpoch = current.PartitionEpoch + 1 });
        };
        var decision = await LeaderElection.ElectAsync(store, "t", 0, ElectionType.Preferred, asController: false, CancellationToken.None);
        Assert.Equal(ErrorCode.None, decision.Error);
        var stored = store.Image.Partition("t", 0)!;
        Assert.Equal((1, 8, 22), (stored.Leader, stored.LeaderEpoch, stored.PartitionEpoch));
        Assert.Equal([1, 2], stored.Isr);
        Assert.Equal(2, store.Writes);

        Assert.Equal(ErrorCode.UnknownTopicOrPartition, (await LeaderElection.ElectAsync(store, "t", 1, ElectionType.Preferred, false, CancellationToken.None)).Error);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, (await LeaderElection.ElectAsync(store, "nope", 0, ElectionType.Preferred, false, CancellationToken.None)).Error);
    }

    [Fact]
    public async Task ElectAsyncGivesUpAfterBoundedAttempts()
    {
        var store = new MemoryMetadataStore(Image([1, 2, 3], ("t", [State(2, [1, 2, 3])])));
        store.BeforeAlter = (current, _) => store.Replace("t", 0, current with { PartitionEpoch = current.PartitionEpoch + 1 });
        var decision = await LeaderElection.ElectAsync(store, "t", 0, ElectionType.Preferred, asController: false, CancellationToken.None);
        Assert.Equal(ErrorCode.RequestTimedOut, decision.Error);
        Assert.Equal(LeaderElection.MaxAttempts, store.Writes);
    }

    [Fact]
    public async Task TheRebalancerActsOnItsClockAndOnlyAsController()
    {
        var time = FakeTime.Create();
        var store = new MemoryMetadataStore(Image([1, 2, 3], ("t", [State(2, [1, 2, 3]), State(1, [1, 2, 3])])));
        using var rebalancer = new LeaderRebalancer(store, time, TimeSpan.FromSeconds(300), imbalancePercentage: 10, new BrokerLog(LogLevel.None));
        time.Advance(TimeSpan.FromSeconds(299));
        Assert.Equal(2, store.Image.Partition("t", 0)!.Leader); // not yet due
        store.IsController = false;
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, rebalancer.Checks); // due, but another broker is the controller
        store.IsController = true;
        time.Advance(TimeSpan.FromSeconds(300));
        await Eventually.TrueAsync(() => rebalancer.Checks == 1, TimeSpan.FromSeconds(10), "the controller's check");
        var state = store.Image.Partition("t", 0)!;
        Assert.Equal((1, 8), (state.Leader, state.LeaderEpoch));
        Assert.Equal(1, rebalancer.Moved);
        Assert.Equal(1, store.Writes); // partition 1 already had its preferred leader
    }
}

/// <summary>
/// An <see cref="IMetadataStore"/> in memory for tests of the controller's decisions: one image, replaced by
/// compare-and-swap writes; a hook lets a test slip a concurrent change in before a write is checked.
/// </summary>
internal sealed class MemoryMetadataStore(MetadataImage image) : IMetadataStore
{
    private readonly object _lock = new();
    private MetadataImage _image = image;

    public MetadataImage Image => Volatile.Read(ref _image);

    public event Action<MetadataImage, MetadataImage>? Published;

    public int NodeId => Image.ControllerId;

    public bool IsController { get; set; } = true;

    /// <summary>Runs before each AlterPartition's compare, with the state the caller read and the state it wants.</summary>
    public Action<PartitionState, PartitionState>? BeforeAlter { get; set; }

    /// <summary>AlterPartition calls made.</summary>
    public int Writes { get; private set; }

    /// <summary>Sets a partition's state as another writer would.</summary>
    public void Replace(string topic, int partition, PartitionState state)
    {
        MetadataImage previous, next;
        lock (_lock)
        {
            previous = _image;
            var t = previous.TopicsByName[topic];
            var partitions = t.Partitions.ToArray();
            partitions[partition] = state;
            next = previous.With(revision: previous.Revision + 1, topics: previous.TopicsByName.Values.Select(x => x.Name == topic ? t with { Partitions = partitions } : x));
            Volatile.Write(ref _image, next);
        }
        Published?.Invoke(previous, next);
    }

    public Task<bool> AlterPartitionAsync(string topic, Guid topicId, int partition, PartitionState current, PartitionState next, bool asController,
        CancellationToken cancellationToken)
    {
        Writes++;
        BeforeAlter?.Invoke(current, next);
        if ((asController && !IsController) || Image.Partition(topic, partition) is not { } stored || !stored.SameAs(current)) return Task.FromResult(false);
        Replace(topic, partition, next);
        return Task.FromResult(true);
    }

    public Task RegisterAsync(BrokerRegistration registration, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task UpdateRegistrationAsync(Func<BrokerRegistration, BrokerRegistration> change, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task BeginShutdownAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<bool> CreateTopicAsync(TopicInfo topic, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<bool> DeleteTopicAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<bool> UpdateTopicAsync(TopicInfo current, TopicInfo updated, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<long> AllocateProducerIdsAsync(int size, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task UpdateClientQuotasAsync(IReadOnlyList<(string Entity, IReadOnlyDictionary<string, double> Quotas)> changes, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public Task UpdateScramCredentialsAsync(IReadOnlyList<(string User, string Mechanism, Tributary.Broker.Security.ScramCredential? Credential)> changes,
        CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<bool> UpdateBrokerConfigsAsync(string resource, IReadOnlyDictionary<string, string>? current, IReadOnlyDictionary<string, string> updated,
        CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task ChangeAclsAsync(IReadOnlyCollection<Tributary.Broker.Security.AclBinding> add, IReadOnlyCollection<Tributary.Broker.Security.AclBinding> remove,
        CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
