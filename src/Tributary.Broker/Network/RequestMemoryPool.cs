namespace Tributary.Broker.Network;

/// <summary>
/// queued.max.request.bytes: the bytes of requests the broker holds at once, across connections. A connection
/// takes a frame's declared size before reading its body and gives it back when the frame's buffer is returned
/// (after the response is sent). As in Kafka's memory pool, a take succeeds whenever anything is left, even if the
/// frame is larger than what is left, so one frame up to socket.request.max.bytes always gets through; when nothing
/// is left the connection waits and so stops reading. Waiters are served in arrival order. No deadlock: every taken
/// byte belongs to a request already being served, which gives it back.
/// </summary>
internal sealed class RequestMemoryPool(long limit)
{
    private readonly object _lock = new();
    private readonly Queue<Waiter> _waiters = new();
    private long _used;

    public bool Unbounded => limit < 0;

    public long Used
    {
        get
        {
            lock (_lock) return _used;
        }
    }

    /// <summary>Completes synchronously (no allocation) while the pool has room or is unbounded.</summary>
    public ValueTask TakeAsync(int bytes, CancellationToken token)
    {
        if (Unbounded) return ValueTask.CompletedTask;
        Waiter waiter;
        lock (_lock)
        {
            if (_used < limit && _waiters.Count == 0)
            {
                _used += bytes;
                return ValueTask.CompletedTask;
            }
            waiter = new Waiter(bytes);
            _waiters.Enqueue(waiter);
        }
        return WaitAsync(waiter, token);
    }

    private async ValueTask WaitAsync(Waiter waiter, CancellationToken token)
    {
        // Cancelled and granted are decided under the lock, so a granted waiter is never also cancelled (which would leak its bytes).
        await using var registration = token.Register(() =>
        {
            lock (_lock) waiter.Turn.TrySetCanceled(token);
        }).ConfigureAwait(false);
        await waiter.Turn.Task.ConfigureAwait(false);
    }

    public void Give(int bytes)
    {
        if (Unbounded) return;
        lock (_lock)
        {
            _used -= bytes;
            while (_used < limit && _waiters.TryDequeue(out var next))
                if (next.Turn.TrySetResult()) _used += next.Bytes;
        }
    }

    private sealed class Waiter(int bytes)
    {
        public int Bytes { get; } = bytes;
        public TaskCompletionSource Turn { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
