namespace Tributary.Coordination;

/// <summary>
/// What a shard may do besides change its own state: post work to its loop, start timers, append records. Everything
/// here is meant to be called on the shard's loop (the timer and append callbacks come back to it).
/// </summary>
public sealed class CoordinatorContext
{
    private readonly ShardHost _host;

    internal CoordinatorContext(ShardHost host, int partition, TimeProvider time)
    {
        _host = host;
        Partition = partition;
        Time = time;
    }

    /// <summary>The internal partition this shard owns.</summary>
    public int Partition { get; }

    public TimeProvider Time { get; }

    public long NowMs => Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Runs <paramref name="action"/> later on this loop; dropped if the shard is unloaded first.</summary>
    public void Post(Action action) => _host.Post(action);

    /// <summary>Runs <paramref name="work"/> later on this loop, alone, to its end.</summary>
    public void Post(Func<Task> work) => _host.PostExclusive(work);

    /// <summary>
    /// Runs <paramref name="fire"/> on this loop after <paramref name="due"/> (on the injected clock), then every
    /// <paramref name="period"/> if one is given. Disposing the timer, or unloading the shard, cancels it: a firing
    /// already queued on the loop is dropped too, so a cancelled timer never runs.
    /// </summary>
    public CoordinatorTimer Schedule(TimeSpan due, Action fire, TimeSpan? period = null) =>
        _host.Schedule(due, period, () =>
        {
            fire();
            return Task.CompletedTask;
        });

    /// <summary>As <see cref="Schedule(TimeSpan, Action, TimeSpan?)"/>, for work that runs alone on the loop to its end.</summary>
    public CoordinatorTimer Schedule(TimeSpan due, Func<Task> fire, TimeSpan? period = null) => _host.Schedule(due, period, fire);

    /// <summary>
    /// Append, then apply on durable: starts appending <paramref name="records"/> now (so the log holds decisions in
    /// the order the loop made them) and calls <paramref name="durable"/> on this loop once the append is durable (null)
    /// or has failed (the exception). Outcomes arrive in append order even when one fsync completes several appends
    /// at once, so a later commit is never applied before an earlier one. The shard changes its state in
    /// <paramref name="durable"/>, never before: what a client was told is what a restart replays.
    /// </summary>
    public void Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, Action<Exception?> durable) =>
        _host.Append(records, (_, error) => durable(error), producer: null);

    /// <summary>
    /// As <see cref="Append(IReadOnlyList{ValueTuple{byte[], byte[]}}, Action{Exception})"/>, telling
    /// <paramref name="durable"/> the offset of the first record too (-1 when the append failed or was empty): record i
    /// is at that offset + i, which is what replay reports for it. With <paramref name="producer"/> the records are
    /// one transactional batch of that producer, undecided until its marker (see <see cref="TransactionalProducer"/>).
    /// </summary>
    public void Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, Action<long, Exception?> durable, TransactionalProducer? producer = null) =>
        _host.Append(records, durable, producer);

    /// <summary>
    /// For exclusive work: appends and completes when durable (throws if the append failed). The caller applies the
    /// change after awaiting; nothing else runs on the loop meanwhile.
    /// </summary>
    public Task AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records) => _host.AppendAsync(records);

    /// <summary>Reports a message through the host's logger, prefixed with the coordinator and partition.</summary>
    public void Report(CoordinatorLogLevel level, string message) => _host.Report(level, message);
}

/// <summary>A timer started by <see cref="CoordinatorContext.Schedule(TimeSpan, Action, TimeSpan?)"/>; used on the shard's loop only.</summary>
public sealed class CoordinatorTimer : IDisposable
{
    private readonly ShardHost _host;
    private readonly TimeSpan? _period;
    private ITimer? _timer;

    internal CoordinatorTimer(ShardHost host, TimeSpan? period)
    {
        _host = host;
        _period = period;
    }

    /// <summary>True once disposed or unloaded: a queued firing checks it and does nothing.</summary>
    public bool IsCancelled { get; private set; }

    internal void Start(ITimer timer) => _timer = timer;

    /// <summary>Re-arms the timer to fire after <paramref name="due"/> (a session deadline pushed back by a heartbeat).</summary>
    public void Change(TimeSpan due)
    {
        if (IsCancelled) return;
        _host.Track(this);
        _timer?.Change(due, _period ?? Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        if (IsCancelled) return;
        IsCancelled = true;
        _timer?.Dispose();
        _host.Forget(this);
    }
}
