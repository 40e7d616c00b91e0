using System.Diagnostics;
using System.Threading.Channels;

namespace Tributary.Coordination;

/// <summary>
/// One shard's event loop: a channel of events run one at a time. An event is either an action (it never blocks; what
/// must wait parks a completion that a later event completes) or exclusive work (the loop awaits it to its end before
/// the next event). The loader is the first event; unloading is the last.
/// </summary>
internal sealed class ShardHost
{
    private readonly Channel<Func<Task>> _events = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HashSet<CoordinatorTimer> _timers = [];
    private readonly ICoordinatorLog _log;
    private readonly TimeProvider _time;
    private readonly CoordinatorRuntimeCore _runtime;
    private readonly TaskCompletionSource<ShardStatus> _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _appendTail = Task.CompletedTask;
    private Task? _loop;
    private volatile ShardStatus _status = ShardStatus.Loading;

    public ShardHost(CoordinatorRuntimeCore runtime, int partition, ICoordinatorLog log, TimeProvider time)
    {
        _runtime = runtime;
        Partition = partition;
        _log = log;
        _time = time;
        Context = new CoordinatorContext(this, partition, time);
    }

    public int Partition { get; }

    public CoordinatorContext Context { get; }

    public ShardStatus Status => _status;

    /// <summary>The shard's state machine, set by the loader; touched only on the loop.</summary>
    public ICoordinatorShard? Shard { get; private set; }

    /// <summary>Completes with <see cref="ShardStatus.Loaded"/> or <see cref="ShardStatus.Failed"/> when the load ends.</summary>
    public Task<ShardStatus> Loaded => _loaded.Task;

    /// <summary>Starts the loop with the loader as its first event.</summary>
    public void Start(Func<CoordinatorContext, ICoordinatorShard> create, SemaphoreSlim loadGate)
    {
        _events.Writer.TryWrite(() => LoadAsync(create, loadGate));
        _loop = Task.Run(RunAsync);
    }

    private async Task LoadAsync(Func<CoordinatorContext, ICoordinatorShard> create, SemaphoreSlim loadGate)
    {
        // Replays read the disk and decode on the loop's thread: a few at a time, not every partition at once.
        await loadGate.WaitAsync().ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        long records = 0;
        try
        {
            var shard = create(Context);
            Shard = shard;
            foreach (var record in _log.Read(Undecodable))
            {
                records++;
                try
                {
                    if (record.Marker is { } outcome) shard.ReplayEndTransaction(record.ProducerId, record.ProducerEpoch, outcome, record.Offset);
                    else shard.Replay(record);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Undecodable(record.Offset, e);
                }
            }
            shard.OnLoaded();
            _status = ShardStatus.Loaded;
            _runtime.LoadDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, _runtime.NameTag);
            Report(CoordinatorLogLevel.Info, $"loaded {records} records in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _status = ShardStatus.Failed;
            Interlocked.Increment(ref _runtime.LoadFailures);
            Report(CoordinatorLogLevel.Error, $"load failed after {records} records; the shard stays unavailable until it is loaded again: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            loadGate.Release();
            _loaded.TrySetResult(_status);
        }
    }

    private void Undecodable(long offset, Exception e)
    {
        Interlocked.Increment(ref _runtime.SkippedRecords);
        Report(CoordinatorLogLevel.Error, $"skipped an undecodable record at offset {offset}: {e.GetType().Name}: {e.Message}");
    }

    private async Task RunAsync()
    {
        var reader = _events.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var work))
            {
                try
                {
                    await work().ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Report(CoordinatorLogLevel.Error, e.ToString());
                }
            }
        }
    }

    public bool Post(Action action) => _events.Writer.TryWrite(() =>
    {
        action();
        return Task.CompletedTask;
    });

    public bool PostExclusive(Func<Task> work) => _events.Writer.TryWrite(work);

    /// <summary>
    /// Runs <paramref name="op"/> on the loop against a loaded shard; <paramref name="exclusive"/> makes the loop await
    /// its task before the next event. Unavailable (loading, failed, unloading): <paramref name="unavailable"/>.
    /// </summary>
    public Task<T> Run<T>(Func<ICoordinatorShard, Task<T>> op, Func<ShardStatus, T> unavailable, bool exclusive)
    {
        if (_status != ShardStatus.Loaded) return Task.FromResult(unavailable(_status));
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var queued = _events.Writer.TryWrite(async () =>
        {
            // The shard may have been unloaded (or its load failed) between the check above and this event.
            if (_status != ShardStatus.Loaded || Shard is not { } shard)
            {
                result.TrySetResult(unavailable(_status));
                return;
            }
            Task<T> task;
            try
            {
                task = op(shard);
            }
            catch (Exception e)
            {
                result.TrySetException(e);
                return;
            }
            if (exclusive)
            {
                try
                {
                    result.TrySetResult(await task.ConfigureAwait(false));
                }
                catch (Exception e)
                {
                    result.TrySetException(e);
                }
            }
            else
            {
                _ = task.ContinueWith(
                    static (t, state) =>
                    {
                        var r = (TaskCompletionSource<T>)state!;
                        if (t.IsFaulted) r.TrySetException(t.Exception!.InnerExceptions);
                        else if (t.IsCanceled) r.TrySetCanceled();
                        else r.TrySetResult(t.Result);
                    },
                    result, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        });
        return queued ? result.Task : Task.FromResult(unavailable(ShardStatus.NotLoaded));
    }

    /// <summary>
    /// Queues <paramref name="op"/> behind whatever the loop holds — the load too, when it is still replaying — and
    /// runs it only if the shard is then loaded; true if it ran. An event for a shard that has not loaded yet is not
    /// refused, unlike <see cref="Run{T}"/>: it is news the replay may not have read (a marker written meanwhile).
    /// </summary>
    public Task<bool> RunWhenLoaded(Action<ICoordinatorShard> op)
    {
        var ran = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var queued = _events.Writer.TryWrite(() =>
        {
            if (_status != ShardStatus.Loaded || Shard is not { } shard)
            {
                ran.TrySetResult(false);
                return Task.CompletedTask;
            }
            try
            {
                op(shard);
                ran.TrySetResult(true);
            }
            catch (Exception e)
            {
                ran.TrySetException(e);
            }
            return Task.CompletedTask;
        });
        if (!queued) ran.TrySetResult(false);
        return ran.Task;
    }

    // ---- append, then apply on durable ---------------------------------------------------------------------------

    public void Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, Action<long, Exception?> durable, TransactionalProducer? producer)
    {
        if (records.Count == 0)
        {
            durable(-1, null);
            return;
        }
        var append = StartAppend(records, producer);
        // Appends that share an fsync complete together, each on its own pool thread: deliver outcomes in log order.
        _appendTail = DeliverInOrderAsync(_appendTail, append, durable);
    }

    public async Task AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records)
    {
        if (records.Count == 0) return;
        var append = StartAppend(records, producer: null);
        _appendTail = Task.WhenAll(_appendTail, append.ContinueWith(static _ => { }, TaskScheduler.Default));
        await append.ConfigureAwait(false);
    }

    private Task<long> StartAppend(IReadOnlyList<(byte[] Key, byte[]? Value)> records, TransactionalProducer? producer)
    {
        try
        {
            return _log.AppendAsync(records, Context.NowMs, producer);
        }
        catch (Exception e)
        {
            return Task.FromException<long>(e);
        }
    }

    private async Task DeliverInOrderAsync(Task previous, Task<long> append, Action<long, Exception?> durable)
    {
        await previous.ConfigureAwait(false);
        Exception? error = null;
        var offset = -1L;
        try
        {
            offset = await append.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
            Report(CoordinatorLogLevel.Error, $"append failed: {e.Message}");
        }
        // After an unload this is dropped; unloading waits for the tail first, so that happens only to appends the
        // unload hook itself started.
        Post(() => durable(offset, error));
    }

    // ---- timers ----------------------------------------------------------------------------------------------------

    public CoordinatorTimer Schedule(TimeSpan due, TimeSpan? period, Func<Task> fire)
    {
        var handle = new CoordinatorTimer(this, period);
        _timers.Add(handle);
        handle.Start(_time.CreateTimer(_ => PostExclusive(() => handle.IsCancelled ? Task.CompletedTask : FireAsync(handle, period, fire)),
            null, due, period ?? Timeout.InfiniteTimeSpan));
        return handle;
    }

    private Task FireAsync(CoordinatorTimer handle, TimeSpan? period, Func<Task> fire)
    {
        // A one-shot timer that fired is no longer pending: unload has nothing to cancel unless it is re-armed.
        if (period is null) _timers.Remove(handle);
        return fire();
    }

    internal void Track(CoordinatorTimer timer) => _timers.Add(timer);

    internal void Forget(CoordinatorTimer timer) => _timers.Remove(timer);

    // ---- unload ----------------------------------------------------------------------------------------------------

    /// <summary>
    /// Stops the shard: no new operations; timers cancelled; every append already started delivers its outcome; then
    /// the shard answers what it has parked (<see cref="ICoordinatorShard.OnUnloaded"/>) and the loop ends.
    /// </summary>
    public async Task UnloadAsync()
    {
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_events.Writer.TryWrite(() =>
        {
            _status = ShardStatus.NotLoaded;
            foreach (var timer in _timers.ToList()) timer.Dispose();
            stopping.TrySetResult();
            return Task.CompletedTask;
        }))
        {
            return;
        }
        await stopping.Task.ConfigureAwait(false);
        // Outcomes of appends in flight are posted to the loop before their tail completes, so once the tail is
        // complete and no new append followed, every waiter has its answer queued ahead of the final event below.
        while (true)
        {
            var tail = await OnLoop(() => _appendTail).ConfigureAwait(false);
            await tail.ConfigureAwait(false);
            if (await OnLoop(() => _appendTail).ConfigureAwait(false) == tail) break;
        }
        Post(() =>
        {
            try
            {
                if (_loaded.Task.IsCompleted && _loaded.Task.Result == ShardStatus.Loaded) Shard?.OnUnloaded();
            }
            finally
            {
                foreach (var timer in _timers.ToList()) timer.Dispose();
                _events.Writer.TryComplete();
            }
        });
        if (_loop is { } loop) await loop.ConfigureAwait(false);
        _loaded.TrySetResult(ShardStatus.NotLoaded);
        Report(CoordinatorLogLevel.Info, "unloaded");
    }

    private Task<T> OnLoop<T>(Func<T> read)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!Post(() => done.TrySetResult(read()))) done.TrySetException(new ObjectDisposedException("coordinator shard"));
        return done.Task;
    }

    public void Report(CoordinatorLogLevel level, string message) => _runtime.Report(level, $"{_runtime.Name} coordinator, partition {Partition}: {message}");
}
