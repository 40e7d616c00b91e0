namespace Tributary.Broker.Cluster;

/// <summary>
/// The active controller's duties that follow broker liveness, as Kafka's controller does when a broker is fenced or
/// comes back: a partition whose leader is no longer registered gets a new leader from its in-sync replicas that are
/// alive (the first in replica order, so the preferred leader wins when it can), with the leader epoch bumped; the dead
/// broker leaves the ISR unless it is the last member (so it can lead again when it returns, losing nothing). With no
/// live in-sync replica the partition has no leader, unless <c>unclean.leader.election.enable</c> lets an out-of-sync
/// replica lead. A partition without a leader gets one as soon as an in-sync replica is back. Every change is written
/// only while this broker still holds the controller key (<see cref="IMetadataStore.AlterPartitionAsync"/>). It also
/// completes reassignments whose target replicas are all in sync (<see cref="PartitionReassignment.Complete"/>).
/// </summary>
public sealed class ClusterController : IDisposable
{
    private readonly IMetadataStore _store;
    private readonly BrokerLog _log;
    private readonly bool _unclean;
    private readonly SemaphoreSlim _running = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private int _pending;

    public ClusterController(IMetadataStore store, bool uncleanLeaderElection, BrokerLog log)
    {
        _store = store;
        _unclean = uncleanLeaderElection;
        _log = log;
        store.Published += OnPublished;
    }

    /// <summary>Elections this controller wrote (for tests and metrics).</summary>
    public int Elections => Volatile.Read(ref _elections);

    private int _elections;

    /// <summary>The partition state the controller wants for <paramref name="state"/> given the live brokers; null when it is fine.</summary>
    public static PartitionState? Decide(PartitionState state, IReadOnlySet<int> alive, bool unclean)
    {
        var leaderAlive = state.Leader >= 0 && alive.Contains(state.Leader);
        var isrAlive = state.Isr.Where(alive.Contains).ToArray();
        // The dead leave the ISR, but never the last member: it holds everything acknowledged.
        var isr = isrAlive.Length > 0 ? isrAlive : state.Isr;
        if (leaderAlive)
            return isr.Length == state.Isr.Length ? null : state with { Isr = isr, PartitionEpoch = state.PartitionEpoch + 1 };
        var candidate = state.Replicas.FirstOrDefault(r => alive.Contains(r) && Array.IndexOf(state.Isr, r) >= 0, -1);
        if (candidate < 0 && unclean) candidate = state.Replicas.FirstOrDefault(alive.Contains, -1);
        if (candidate < 0)
            return state.Leader == -1 && isr.Length == state.Isr.Length ? null
                : state with { Leader = -1, Isr = isr, LeaderEpoch = state.LeaderEpoch + 1, PartitionEpoch = state.PartitionEpoch + 1 };
        if (Array.IndexOf(isr, candidate) < 0) isr = [candidate]; // unclean: the new leader's log is the truth now
        return state with { Leader = candidate, Isr = isr, LeaderEpoch = state.LeaderEpoch + 1, PartitionEpoch = state.PartitionEpoch + 1 };
    }

    private void OnPublished(MetadataImage previous, MetadataImage image)
    {
        if (!_store.IsController || _stop.IsCancellationRequested) return;
        // One pass at a time; an image arriving meanwhile makes the running pass go round once more.
        Interlocked.Exchange(ref _pending, 1);
        _ = Task.Run(RunAsync);
    }

    private async Task RunAsync()
    {
        if (!await _running.WaitAsync(0).ConfigureAwait(false)) return;
        try
        {
            while (Interlocked.Exchange(ref _pending, 0) == 1 && _store.IsController && !_stop.IsCancellationRequested)
                await PassAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException && !_stop.IsCancellationRequested)
        {
            _log.Error($"controller: a pass failed: {e.Message}");
        }
        catch (OperationCanceledException)
        {
        }
        catch (Grpc.Core.RpcException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            _running.Release();
        }
        if (Volatile.Read(ref _pending) == 1 && !_stop.IsCancellationRequested) _ = Task.Run(RunAsync);
    }

    private async Task PassAsync()
    {
        var image = _store.Image;
        // A broker in controlled shutdown counts as gone for leadership and the ISR; it still serves until they moved.
        var alive = image.Brokers.Values.Where(b => !b.ShuttingDown).Select(b => b.NodeId).ToHashSet();
        foreach (var topic in image.TopicsByName.Values)
            for (var p = 0; p < topic.PartitionCount; p++)
            {
                var state = topic.Partitions[p];
                if ((Decide(state, alive, _unclean) ?? PartitionReassignment.Complete(state, alive)) is not { } next) continue;
                if (await _store.AlterPartitionAsync(topic.Name, topic.Id, p, state, next, asController: true, _stop.Token).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref _elections);
                    if (state.IsReassigning && !next.IsReassigning)
                        _log.Info($"controller: {topic.Name}-{p} reassignment completed, replicas [{string.Join(",", next.Replicas)}].");
                    if (next.Leader != state.Leader)
                        _log.Info($"controller: {topic.Name}-{p} leader {state.Leader} -> {next.Leader} (epoch {next.LeaderEpoch}, ISR [{string.Join(",", next.Isr)}]).");
                }
                else
                {
                    Interlocked.Exchange(ref _pending, 1); // the state moved under us: look again with the next image
                }
            }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _store.Published -= OnPublished;
    }
}
