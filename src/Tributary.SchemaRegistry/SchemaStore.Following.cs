using Tributary.Coordination;
using Tributary.SchemaRegistry.Storage;

namespace Tributary.SchemaRegistry;

/// <summary>
/// A store that follows a replica of <c>_schemas</c>-0 (what every broker runs): its state is fed by
/// <see cref="SchemaLogTail"/>, its writer loaded by the host only on the leader, its writes decided on the whole local
/// log and answered once committed and applied (see the class comment in SchemaStore.cs).
/// </summary>
public sealed partial class SchemaStore
{
    /// <summary>
    /// Opens a store that follows this broker's replica of <c>_schemas</c>-0 (<paramref name="source"/>): it applies what
    /// is committed there now, before it returns, and then whatever is committed later, on every nudge
    /// (<see cref="LogChanged"/>). The writer is not loaded: the host loads it on the leader (<see cref="Writer"/>). Writes
    /// go through <paramref name="writes"/>, whose appends complete once the ISR holds them.
    /// </summary>
    /// <exception cref="InvalidOperationException">The replica could not be read; no store serves partial state.</exception>
    public static SchemaStore OpenFollowing(SchemaLogSource source, ICoordinatorLog writes, CompatibilityLevel defaultCompatibility = CompatibilityLevel.Backward,
        IEnumerable<ISchemaProvider>? providers = null, Action<CoordinatorLogLevel, string>? report = null, TimeProvider? time = null)
    {
        var store = new SchemaStore(writes, defaultCompatibility, providers, report ?? ((_, _) => { }), time ?? TimeProvider.System, source);
        var tail = store._tail!;
        try
        {
            tail.CatchUp();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new InvalidOperationException($"The schema registry could not load its log (_schemas partition {Partition}): {e.GetType().Name}: {e.Message}", e);
        }
        tail.Start();
        return store;
    }

    /// <summary>
    /// The writer's shard: a store that follows a replica has it loaded only on the leader of <c>_schemas</c>-0 (the host
    /// loads and unloads it with the leadership); a store over a log it alone writes has it loaded from the start.
    /// </summary>
    public CoordinatorRuntimeCore Writer => _runtime;

    /// <summary>True when writes run here: the writer is loaded.</summary>
    public bool IsWriter => _runtime.StatusOf(Partition) == ShardStatus.Loaded;

    /// <summary>The offset after the last record of <c>_schemas</c>-0 the state holds (0 for a store that does not follow a replica).</summary>
    public long AppliedEnd => _tail?.AppliedEnd ?? 0;

    /// <summary>
    /// False while the state may be behind what is committed: no replica here, or a follower that has not heard its
    /// leader's high watermark since it started. Always true for a store that does not follow a replica.
    /// </summary>
    public bool IsCurrent => _tail?.IsCurrent ?? true;

    /// <summary>
    /// True while the replica holds records the state has not applied yet (or the state is not current): an id just
    /// registered elsewhere may be among them, so a check that fails now may pass in a moment.
    /// </summary>
    public bool IsCatchingUp => _tail is { } tail && (!tail.IsCurrent || tail.LocalEnd > tail.AppliedEnd);

    /// <summary>The replica may have more committed records: applies them soon (cheap, from any thread).</summary>
    public void LogChanged() => _tail?.Poke();

    /// <summary>
    /// Completes true once the state holds every record below <paramref name="offset"/> (a write the leader reported
    /// done up to there), false after <paramref name="timeout"/>. A store that does not follow a replica is always there.
    /// </summary>
    public Task<bool> WaitAppliedAsync(long offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _tail is { } tail ? tail.WaitAppliedAsync(offset, timeout, cancellationToken) : Task.FromResult(true);

    /// <summary>A follower's log to write through: the writer's loader reads nothing, since the tail feeds the state.</summary>
    private sealed class AppendOnlyLog(ICoordinatorLog inner) : ICoordinatorLog
    {
        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable) => [];

        public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer = null) =>
            inner.AppendAsync(records, timestampMs, producer);
    }

    /// <summary>
    /// Waits until the tail has applied everything in the local replica: on a leader, the records a write appended, and at
    /// the first write after it took over, whatever its predecessor left uncommitted (which its followers now fetch).
    /// 50002 when that is not committed in time (followers behind, the ISR not shrunk yet); the write is retried by the client.
    /// </summary>
    private async Task CatchUpWithLocalLogAsync()
    {
        if (_tail is not { } tail) return;
        var end = tail.LocalEnd;
        if (!await tail.WaitAppliedAsync(end, CatchUpTimeout, CancellationToken.None).ConfigureAwait(false))
            throw RegistryException.TimedOut($"_schemas partition {Partition} is committed and applied up to offset {tail.AppliedEnd} of {end}; its in-sync replicas have not caught up");
    }

    /// <summary>Empties the state before the tail rebuilds it from the log start (its replica lost records it had applied).</summary>
    private void ResetState()
    {
        List<int> ids;
        lock (_sync)
        {
            ids = [.. _byId.Keys];
            _subjects.Clear();
            _byId.Clear();
            _idByContent.Clear();
            _parsed.Clear();
            _subjectConfigs.Clear();
            _subjectModes.Clear();
            _globalConfig = null;
            _globalMode = null;
            _maxId = 0;
        }
        foreach (var id in ids) IdChanged?.Invoke(id);
    }
}
