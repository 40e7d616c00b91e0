using System.Collections.Concurrent;

namespace Tributary.Storage;

/// <summary>
/// The thread that makes appends durable. Group commit: an append writes its bytes under the partition
/// lock, joins that partition's pending <see cref="FlushGeneration"/> and schedules the partition here
/// (once: a flag de-duplicates). This thread takes each scheduled partition, closes its generation, runs
/// one fdatasync for everything written so far, advances the high watermark and completes every append
/// of the generation at once. Appends that arrive during the sync join the next generation, so under load
/// one sync serves many appends and appending never waits for a sync in progress. Partitions share the
/// thread: one pass over all dirty partitions, one sync per partition file.
/// </summary>
internal sealed class LogFlusher : IDisposable
{
    private readonly BlockingCollection<PartitionLog> _queue = new(new ConcurrentQueue<PartitionLog>());
    private readonly Thread _thread;

    public LogFlusher(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Used by logs opened without a <see cref="LogManager"/>.</summary>
    public static LogFlusher Shared { get; } = new("tributary-log-flusher");

    public void Schedule(PartitionLog log)
    {
        try
        {
            _queue.Add(log);
            return;
        }
        catch (InvalidOperationException)
        {
            // Stopped: flush on the caller's thread rather than leave appends waiting forever.
        }

        log.FlushPending();
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        foreach (var log in _queue.GetConsumingEnumerable())
        {
            try
            {
                log.FlushPending();
            }
            catch (Exception)
            {
                // FlushPending fails the waiting appends itself; this thread must survive any one log.
            }
        }
    }
}

/// <summary>The appends waiting for one sync of one partition.</summary>
internal sealed class FlushGeneration
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Task => _done.Task;
    public void Complete() => _done.TrySetResult();
    public void Fail(Exception error) => _done.TrySetException(error);
}
