namespace Tributary.Storage;

/// <summary>
/// The thread that makes appends durable. Group commit: an append writes its bytes under the partition
/// lock, joins that partition's pending <see cref="FlushGeneration"/> and schedules the partition here
/// (once: a flag de-duplicates). This thread takes each scheduled partition, closes its generation, runs
/// one fdatasync for everything written so far, advances the high watermark and completes every append
/// of the generation at once. Appends that arrive during the sync join the next generation, so under load
/// one sync serves many appends and appending never waits for a sync in progress. A sync covers one file, so
/// with many busy partitions the syncs themselves are the cost: a few threads run them side by side (the device
/// serves concurrent fdatasyncs far faster than one after another). A log is synced by one thread at a time
/// (its flush lock), so more threads never sync the same file twice at once.
/// </summary>
internal sealed class LogFlusher : IDisposable
{
    private const int Threads = 4;
    // A plain monitor queue rather than a BlockingCollection: its semaphore spins (sched_yield) before it blocks, and
    // four idle flusher threads spinning between syncs took CPU the clients and the broker's other threads needed.
    private readonly Queue<PartitionLog> _queue = new();
    private readonly object _gate = new();
    private bool _stopped;
    private readonly Thread[] _threads;
    private readonly StorageMetrics? _metrics;

    public LogFlusher(string name, StorageMetrics? metrics = null)
    {
        _metrics = metrics;
        _threads = new Thread[Threads];
        for (var i = 0; i < Threads; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Used by logs opened without a <see cref="LogManager"/>.</summary>
    public static LogFlusher Shared { get; } = new("tributary-log-flusher");

    public void Schedule(PartitionLog log)
    {
        lock (_gate)
        {
            if (!_stopped)
            {
                _queue.Enqueue(log);
                Monitor.Pulse(_gate);
                return;
            }
        }

        // Stopped: flush on the caller's thread rather than leave appends waiting forever.
        log.FlushPending();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stopped = true;
            Monitor.PulseAll(_gate);
        }

        foreach (var thread in _threads)
        {
            if (Thread.CurrentThread != thread)
            {
                thread.Join();
            }
        }
    }

    private void Run()
    {
        while (true)
        {
            PartitionLog log;
            lock (_gate)
            {
                while (_queue.Count == 0)
                {
                    if (_stopped)
                    {
                        return; // what was scheduled before the stop has been flushed
                    }

                    Monitor.Wait(_gate);
                }

                log = _queue.Dequeue();
            }

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var failed = false;
            try
            {
                log.FlushPending();
            }
            catch (Exception)
            {
                // FlushPending fails the waiting appends itself; this thread must survive any one log.
                failed = true;
            }
            _metrics?.Flushed(started, failed);
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
