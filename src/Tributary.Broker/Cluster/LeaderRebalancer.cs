using Tributary.Protocol.Messages;

namespace Tributary.Broker.Cluster;

/// <summary>
/// Kafka's automatic preferred-leader rebalance (<c>auto.leader.rebalance.enable</c>): every
/// <c>leader.imbalance.check.interval.seconds</c>, on the broker's clock, the active controller picks the partitions
/// <see cref="LeaderElection.RebalanceCandidates"/> names (a broker whose share of preferred partitions led elsewhere
/// exceeds <c>leader.imbalance.per.broker.percentage</c>) and runs a preferred election for each, fenced on the
/// controller key. Every broker runs the timer; only the controller acts, so a new controller takes the duty over at its
/// next tick. A check never overlaps the previous one.
/// </summary>
public sealed class LeaderRebalancer : IDisposable
{
    private readonly IMetadataStore _store;
    private readonly int _imbalancePercentage;
    private readonly BrokerLog _log;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _stop = new();
    private int _running;
    private int _checks;
    private int _moved;

    public LeaderRebalancer(IMetadataStore store, TimeProvider time, TimeSpan interval, int imbalancePercentage, BrokerLog log)
    {
        _store = store;
        _imbalancePercentage = imbalancePercentage;
        _log = log;
        _timer = time.CreateTimer(_ => _ = TickAsync(), null, interval, interval);
    }

    /// <summary>Checks done by the timer while this broker was the controller (for tests and metrics).</summary>
    public int Checks => Volatile.Read(ref _checks);

    /// <summary>Leaderships moved back to their preferred replica.</summary>
    public int Moved => Volatile.Read(ref _moved);

    /// <summary>One check now, as a tick does: the number of leaderships it moved (0 unless this broker is the controller).</summary>
    public async Task<int> CheckAsync(CancellationToken cancellationToken)
    {
        if (!_store.IsController) return 0;
        var image = _store.Image;
        var moved = 0;
        foreach (var (topic, partition) in LeaderElection.RebalanceCandidates(image, LeaderElection.EligibleBrokers(image), _imbalancePercentage))
        {
            if (!_store.IsController || cancellationToken.IsCancellationRequested) break;
            var result = await LeaderElection.ElectAsync(_store, topic.Name, partition, ElectionType.Preferred, asController: true, cancellationToken).ConfigureAwait(false);
            if (result.Error == ErrorCode.None && result.Next is { } next)
            {
                moved++;
                _log.Info($"controller: {topic.Name}-{partition} leadership back to its preferred replica {next.Leader} (epoch {next.LeaderEpoch}).");
            }
        }
        Interlocked.Add(ref _moved, moved);
        return moved;
    }

    private async Task TickAsync()
    {
        if (_stop.IsCancellationRequested || !_store.IsController || Interlocked.Exchange(ref _running, 1) == 1) return;
        try
        {
            await CheckAsync(_stop.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _checks);
        }
        catch (Exception e) when (!_stop.IsCancellationRequested)
        {
            _log.Error($"controller: the preferred-leader rebalance failed: {e.Message}");
        }
        catch (Exception)
        {
            // Stopping: the broker leaves the cluster, the next controller rebalances.
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _timer.Dispose();
    }
}
