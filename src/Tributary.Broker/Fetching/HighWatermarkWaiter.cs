using Tributary.Storage;

namespace Tributary.Broker.Fetching;

/// <summary>
/// Lets a long-polling fetch sleep until any of its partitions' high watermark moves, or its max.wait.ms ends:
/// no spinning, no polling loop. Each log is subscribed once however often a fetch names it: adding a handler to an
/// event copies its invocation list, so repeated subscriptions would cost time quadratic in the repeats.
/// </summary>
internal sealed class HighWatermarkWaiter : IDisposable
{
    private readonly TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<PartitionLog> _logs = [];
    private readonly Action<PartitionLog> _onAdvance;
    private readonly Action<PartitionLog> _onReplicated;
    private readonly Replication.ReplicaManager? _replicas;

    /// <param name="replicas">Also wakes when a replicated partition's high watermark moves (its followers caught up).</param>
    public HighWatermarkWaiter(Replication.ReplicaManager? replicas = null)
    {
        _onAdvance = _ => _advanced.TrySetResult();
        _onReplicated = log =>
        {
            lock (_logs)
                if (_logs.Contains(log)) _advanced.TrySetResult();
        };
        _replicas = replicas;
    }

    /// <param name="replicated">The partition has followers: its high watermark moves on their fetches too.</param>
    public void Watch(PartitionLog log, bool replicated = false)
    {
        bool added;
        lock (_logs) added = _logs.Add(log);
        if (added) log.HighWatermarkAdvanced += _onAdvance;
        // Subscribed once, and only by fetches of replicated partitions: a broker alone pays nothing for it.
        if (replicated && _replicas is not null && !_subscribed)
        {
            _subscribed = true;
            _replicas.HighWatermarkAdvanced += _onReplicated;
        }
    }

    private bool _subscribed;

    public Task Advanced => _advanced.Task;

    public void Dispose()
    {
        if (_subscribed) _replicas!.HighWatermarkAdvanced -= _onReplicated;
        lock (_logs)
        {
            foreach (var log in _logs) log.HighWatermarkAdvanced -= _onAdvance;
            _logs.Clear();
        }
    }
}
