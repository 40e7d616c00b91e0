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

    public HighWatermarkWaiter() => _onAdvance = _ => _advanced.TrySetResult();

    public void Watch(PartitionLog log)
    {
        if (_logs.Add(log)) log.HighWatermarkAdvanced += _onAdvance;
    }

    public Task Advanced => _advanced.Task;

    public void Dispose()
    {
        foreach (var log in _logs) log.HighWatermarkAdvanced -= _onAdvance;
        _logs.Clear();
    }
}
