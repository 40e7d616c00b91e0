using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Tributary.Protocol.Messages;

namespace Tributary.Coordination;

/// <summary>The parts of a runtime its shards share, whatever their state machine type.</summary>
public abstract class CoordinatorRuntimeCore
{
    internal long LoadFailures;
    internal long SkippedRecords;

    private protected CoordinatorRuntimeCore(string name, Action<CoordinatorLogLevel, string> log)
    {
        Name = name;
        Log = log;
        NameTag = new KeyValuePair<string, object?>("coordinator", name);
        Meter = new Meter(CoordinatorMetrics.MeterName);
        LoadDuration = Meter.CreateHistogram<double>("tributary.coordinator.load.duration", "ms", "How long a shard's replay took.");
    }

    public string Name { get; }

    internal KeyValuePair<string, object?> NameTag { get; }

    /// <summary>This runtime's meter (one per runtime, so brokers sharing a process are told apart).</summary>
    public Meter Meter { get; }

    internal Histogram<double> LoadDuration { get; }

    private protected Action<CoordinatorLogLevel, string> Log { get; }

    internal void Report(CoordinatorLogLevel level, string message) => Log(level, message);

    /// <summary>Starts loading the shard of <paramref name="partition"/> (no-op if hosted); returns its load outcome.</summary>
    public abstract Task<ShardStatus> Load(int partition);

    /// <summary>Stops hosting the shard: its parked requests are answered, its timers cancelled; later ones get NOT_COORDINATOR.</summary>
    public abstract Task UnloadAsync(int partition);

    public abstract ShardStatus StatusOf(int partition);
}

/// <summary>The runtime's instruments; the meter name is shared, one meter per runtime, tagged with its name.</summary>
public static class CoordinatorMetrics
{
    public const string MeterName = "Tributary.Coordination";
}

/// <summary>
/// The one runtime for "a state machine over an internal compacted partition" (Kafka's <c>CoordinatorRuntime</c>):
/// the group coordinator, the transaction coordinator and the schema registry's writer each supply a shard type and
/// run on it.
/// <list type="bullet">
/// <item>One event loop per shard, a shard being one partition of the coordinator's internal topic. Operations for a
/// key go to the shard its partition names; shards share nothing, so they run in parallel.</item>
/// <item>Shards are loaded and unloaded at run time (<see cref="Load"/>, <see cref="UnloadAsync"/>): in a cluster this
/// broker gains and loses leadership of internal partitions. Loading replays the partition on the shard's loop and
/// completes one <see cref="ShardHost.Loaded"/> signal.</item>
/// <item>One policy for a failed replay: it is logged and counted (<c>tributary.coordinator.load.failures</c>), and the
/// shard stays unavailable (COORDINATOR_LOAD_IN_PROGRESS) until loaded again; it never serves partial state. A single
/// record that does not decode is skipped and counted (<c>tributary.coordinator.records.skipped</c>).</item>
/// <item>Append, then apply on durable (<see cref="CoordinatorContext.Append"/>), and timers on the injected clock
/// (<see cref="CoordinatorContext.Schedule(TimeSpan, Action, TimeSpan?)"/>) that unloading cancels.</item>
/// </list>
/// Instruments (meter <c>Tributary.Coordination</c>, tag <c>coordinator</c>): <c>tributary.coordinator.shards</c> by
/// <c>state</c> (loading, loaded, failed), <c>tributary.coordinator.load.failures</c>,
/// <c>tributary.coordinator.records.skipped</c>, <c>tributary.coordinator.load.duration</c> (ms).
/// </summary>
public sealed class CoordinatorRuntime<TShard> : CoordinatorRuntimeCore, IAsyncDisposable where TShard : class, ICoordinatorShard
{
    private readonly ConcurrentDictionary<int, ShardHost> _shards = new();
    private readonly Func<int, ICoordinatorLog> _logFor;
    private readonly Func<CoordinatorContext, TShard> _create;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _loadGate = new(Math.Max(1, Environment.ProcessorCount));
    private readonly object _lifecycle = new();

    /// <param name="name">For logs and metrics: "group", "transaction", "schema registry".</param>
    /// <param name="logFor">The internal partition a shard reads and appends to.</param>
    /// <param name="create">A fresh state machine for a shard (called on its loop when it starts loading).</param>
    public CoordinatorRuntime(string name, Func<int, ICoordinatorLog> logFor, Func<CoordinatorContext, TShard> create, TimeProvider time, Action<CoordinatorLogLevel, string> log)
        : base(name, log)
    {
        _logFor = logFor;
        _create = create;
        _time = time;
        Meter.CreateObservableGauge("tributary.coordinator.shards", ObserveShards, description: "Shards hosted here, by state.");
        Meter.CreateObservableCounter("tributary.coordinator.load.failures", () => new Measurement<long>(Interlocked.Read(ref LoadFailures), NameTag),
            description: "Shard loads that failed; the shard stays unavailable.");
        Meter.CreateObservableCounter("tributary.coordinator.records.skipped", () => new Measurement<long>(Interlocked.Read(ref SkippedRecords), NameTag),
            description: "Records replay skipped because they did not decode.");
    }

    private IEnumerable<Measurement<int>> ObserveShards()
    {
        int loading = 0, loaded = 0, failed = 0;
        foreach (var host in _shards.Values)
        {
            switch (host.Status)
            {
                case ShardStatus.Loading: loading++; break;
                case ShardStatus.Loaded: loaded++; break;
                case ShardStatus.Failed: failed++; break;
            }
        }
        yield return new Measurement<int>(loading, NameTag, new("state", "loading"));
        yield return new Measurement<int>(loaded, NameTag, new("state", "loaded"));
        yield return new Measurement<int>(failed, NameTag, new("state", "failed"));
    }

    /// <summary>Load failures since start (also a metric).</summary>
    public long LoadFailureCount => Interlocked.Read(ref LoadFailures);

    /// <summary>Records skipped by replays since start (also a metric).</summary>
    public long SkippedRecordCount => Interlocked.Read(ref SkippedRecords);

    public override Task<ShardStatus> Load(int partition)
    {
        lock (_lifecycle)
        {
            if (_shards.TryGetValue(partition, out var existing)) return existing.Loaded;
            var host = new ShardHost(this, partition, _logFor(partition), _time);
            _shards[partition] = host;
            host.Start(_create, _loadGate);
            return host.Loaded;
        }
    }

    public override Task UnloadAsync(int partition)
    {
        lock (_lifecycle)
        {
            return _shards.TryRemove(partition, out var host) ? host.UnloadAsync() : Task.CompletedTask;
        }
    }

    public override ShardStatus StatusOf(int partition) => _shards.TryGetValue(partition, out var host) ? host.Status : ShardStatus.NotLoaded;

    /// <summary>Partitions hosted here, in any state.</summary>
    public IReadOnlyCollection<int> Partitions => [.. _shards.Keys.Order()];

    /// <summary>True when every hosted shard is loaded.</summary>
    public bool AllLoaded => _shards.Values.All(h => h.Status == ShardStatus.Loaded);

    /// <summary>Completes when every shard hosted now has finished loading (loaded or failed).</summary>
    public Task WhenLoadedAsync() => Task.WhenAll(_shards.Values.Select(h => h.Loaded));

    /// <summary>Kafka's error for a request that reaches a shard in <paramref name="status"/>.</summary>
    public static ErrorCode ErrorFor(ShardStatus status) =>
        status == ShardStatus.NotLoaded ? ErrorCode.NotCoordinator : ErrorCode.CoordinatorLoadInProgress;

    /// <summary>
    /// Runs <paramref name="op"/> on the shard's loop. The loop does not wait for the returned task: the operation may
    /// park it for a later event to complete (a JoinGroup waiting for the rest of its group).
    /// </summary>
    public Task<T> RunAsync<T>(int partition, Func<TShard, Task<T>> op, Func<ErrorCode, T> unavailable) =>
        _shards.TryGetValue(partition, out var host)
            ? host.Run(s => op((TShard)s), status => unavailable(ErrorFor(status)), exclusive: false)
            : Task.FromResult(unavailable(ErrorCode.NotCoordinator));

    public Task<T> RunAsync<T>(int partition, Func<TShard, T> op, Func<ErrorCode, T> unavailable) =>
        RunAsync(partition, s => Task.FromResult(op(s)), unavailable);

    /// <summary>
    /// Hands <paramref name="op"/> to the shard of <paramref name="partition"/> even while it is still loading: it runs on
    /// the loop once the replay is done (at once when loaded). Completes true when it ran; false when the shard is not
    /// hosted here, its load failed, or it was unloaded first — whoever loads it next replays the log, news included.
    /// For what the log already holds but the shard may not have read (a transaction marker appended beside it).
    /// </summary>
    public Task<bool> RunWhenLoadedAsync(int partition, Action<TShard> op) =>
        _shards.TryGetValue(partition, out var host) ? host.RunWhenLoaded(s => op((TShard)s)) : Task.FromResult(false);

    /// <summary>Runs <paramref name="op"/> alone on the shard's loop, to its end (awaiting its appends) before the next event.</summary>
    public Task<T> RunExclusiveAsync<T>(int partition, Func<TShard, Task<T>> op, Func<ErrorCode, T> unavailable) =>
        _shards.TryGetValue(partition, out var host)
            ? host.Run(s => op((TShard)s), status => unavailable(ErrorFor(status)), exclusive: true)
            : Task.FromResult(unavailable(ErrorCode.NotCoordinator));

    /// <summary>Runs <paramref name="op"/> on every loaded shard; the results of those that answered, in partition order.</summary>
    public async Task<List<T>> RunOnAllAsync<T>(Func<TShard, T> op)
    {
        var runs = _shards.OrderBy(s => s.Key)
            .Select(s => s.Value.Run(shard => Task.FromResult<(bool, T?)>((true, op((TShard)shard))), _ => (false, default), exclusive: false))
            .ToList();
        var results = new List<T>(runs.Count);
        foreach (var run in runs)
        {
            var (ok, value) = await run.ConfigureAwait(false);
            if (ok) results.Add(value!);
        }
        return results;
    }

    /// <summary>Unloads every shard (parked requests answered, timers cancelled) and ends the loops.</summary>
    public async ValueTask DisposeAsync()
    {
        List<Task> unloads;
        lock (_lifecycle)
        {
            unloads = [.. _shards.Keys.ToList().Select(p => _shards.TryRemove(p, out var host) ? host.UnloadAsync() : Task.CompletedTask)];
        }
        await Task.WhenAll(unloads).ConfigureAwait(false);
        Meter.Dispose();
    }
}
