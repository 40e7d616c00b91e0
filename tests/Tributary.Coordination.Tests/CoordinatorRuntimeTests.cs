using System.Diagnostics.Metrics;
using System.Text;
using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Coordination.Tests;

/// <summary>
/// The runtime's contract, with a small counter state machine: each record is "name=value" (a null value deletes the
/// name). Operations read and write counters; writes go through append-then-apply.
/// </summary>
public sealed class CoordinatorRuntimeTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private sealed class CounterShard(CoordinatorContext context) : ICoordinatorShard
    {
        public readonly Dictionary<string, int> Counters = [];
        public readonly List<TaskCompletionSource<ErrorCode>> Parked = [];
        public int TimerFirings;
        public bool Unloaded;

        public CoordinatorContext Context { get; } = context;

        public void Replay(CoordinatorRecord record)
        {
            var name = Encoding.UTF8.GetString(record.Key!.Value.Span);
            if (name == "poison") throw new InvalidDataException("poison record");
            if (record.Value is { } v) Counters[name] = int.Parse(Encoding.UTF8.GetString(v.Span));
            else Counters.Remove(name);
        }

        public void OnLoaded()
        {
        }

        public void OnUnloaded()
        {
            Unloaded = true;
            foreach (var p in Parked) p.TrySetResult(ErrorCode.NotCoordinator);
        }

        /// <summary>Sets a counter: appended first, applied when durable; the answer says which.</summary>
        public Task<ErrorCode> Set(string name, int value)
        {
            var done = new TaskCompletionSource<ErrorCode>(TaskCreationOptions.RunContinuationsAsynchronously);
            Context.Append([Record(name, value)], error =>
            {
                if (error is null) Counters[name] = value;
                done.TrySetResult(error is null ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable);
            });
            return done.Task;
        }
    }

    private static (byte[], byte[]?) Record(string name, int? value) =>
        (Encoding.UTF8.GetBytes(name), value is { } v ? Encoding.UTF8.GetBytes(v.ToString()) : null);

    /// <summary>A log whose appends complete when the test says so, and whose reads can be made to fail.</summary>
    private sealed class ControlledLog : ICoordinatorLog
    {
        public readonly MemoryCoordinatorLog Stored = new();
        public readonly List<TaskCompletionSource> Pending = [];
        public bool Manual;
        public Exception? ReadFailure;

        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
        {
            if (ReadFailure is { } failure) throw failure;
            return Stored.Read(undecodable);
        }

        public async Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer)
        {
            if (Manual)
            {
                var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (Pending) Pending.Add(gate);
                await gate.Task;
            }
            return await Stored.AppendAsync(records, timestampMs, producer);
        }
    }

    private static CoordinatorRuntime<CounterShard> Runtime(Func<int, ICoordinatorLog> logs, TimeProvider? time = null, List<string>? messages = null) =>
        new("test", logs, context => new CounterShard(context), time ?? TimeProvider.System,
            (level, message) =>
            {
                if (messages is null) return;
                lock (messages) messages.Add($"{level}: {message}");
            });

    private static Task<int?> Get(CoordinatorRuntime<CounterShard> runtime, int partition, string name) =>
        runtime.RunAsync<int?>(partition, s => s.Counters.TryGetValue(name, out var v) ? v : null, _ => -1);

    [Fact]
    public async Task A_loaded_shard_holds_what_its_partition_replays_and_a_missing_one_is_not_the_coordinator()
    {
        var log = new ControlledLog();
        await log.Stored.AppendAsync([Record("a", 1), Record("b", 2), Record("a", 3), Record("b", null)], 0);
        await using var runtime = Runtime(_ => log);

        Assert.Equal(ShardStatus.Loaded, await runtime.Load(0));

        Assert.Equal(3, await Get(runtime, 0, "a"));
        Assert.Null(await Get(runtime, 0, "b"));
        var error = await runtime.RunAsync(7, _ => ErrorCode.None, e => e);
        Assert.Equal(ErrorCode.NotCoordinator, error);
    }

    [Fact]
    public async Task A_shard_still_loading_answers_load_in_progress()
    {
        var log = new ControlledLog();
        await log.Stored.AppendAsync([Record("a", 1)], 0);
        var release = new ManualResetEventSlim();
        await using var runtime = new CoordinatorRuntime<CounterShard>("test", _ => log, context =>
        {
            release.Wait(Wait);
            return new CounterShard(context);
        }, TimeProvider.System, (_, _) => { });

        var loaded = runtime.Load(0);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, await runtime.RunAsync(0, _ => ErrorCode.None, e => e));
        release.Set();

        Assert.Equal(ShardStatus.Loaded, await loaded);
        Assert.Equal(ErrorCode.None, await runtime.RunAsync(0, _ => ErrorCode.None, e => e));
    }

    [Fact]
    public async Task A_failed_replay_keeps_the_shard_unavailable_counts_it_and_a_reload_recovers()
    {
        var log = new ControlledLog { ReadFailure = new IOException("disk read error") };
        await log.Stored.AppendAsync([Record("a", 5)], 0);
        var messages = new List<string>();
        await using var runtime = Runtime(_ => log, messages: messages);
        using var metrics = new RuntimeMetrics(runtime);

        Assert.Equal(ShardStatus.Failed, await runtime.Load(0));

        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, await runtime.RunAsync(0, _ => ErrorCode.None, e => e));
        Assert.Equal(1, runtime.LoadFailureCount);
        Assert.Equal(1, metrics.Gauge("tributary.coordinator.shards", "failed"));
        Assert.Equal(1, metrics.Counter("tributary.coordinator.load.failures"));
        lock (messages) Assert.Contains(messages, m => m.StartsWith("Error", StringComparison.Ordinal) && m.Contains("disk read error", StringComparison.Ordinal));

        log.ReadFailure = null;
        await runtime.UnloadAsync(0);
        Assert.Equal(ShardStatus.Loaded, await runtime.Load(0));
        Assert.Equal(5, await Get(runtime, 0, "a"));
        Assert.Equal(0, metrics.Gauge("tributary.coordinator.shards", "failed"));
        Assert.Equal(1, metrics.Gauge("tributary.coordinator.shards", "loaded"));
    }

    [Fact]
    public async Task A_record_that_does_not_decode_is_skipped_and_counted_and_the_rest_loads()
    {
        var log = new ControlledLog();
        await log.Stored.AppendAsync([Record("a", 1), Record("poison", 9), Record("b", 2)], 0);
        await using var runtime = Runtime(_ => log);
        using var metrics = new RuntimeMetrics(runtime);

        Assert.Equal(ShardStatus.Loaded, await runtime.Load(0));

        Assert.Equal(1, await Get(runtime, 0, "a"));
        Assert.Equal(2, await Get(runtime, 0, "b"));
        Assert.Equal(1, runtime.SkippedRecordCount);
        Assert.Equal(1, metrics.Counter("tributary.coordinator.records.skipped"));
    }

    [Fact]
    public async Task A_write_is_applied_only_once_durable_and_outcomes_arrive_in_append_order()
    {
        var log = new ControlledLog { Manual = true };
        await using var runtime = Runtime(_ => log);
        await runtime.Load(0);

        var firstAnswer = runtime.RunAsync(0, s => s.Set("x", 1), e => e);
        var secondAnswer = runtime.RunAsync(0, s => s.Set("x", 2), e => e);
        await Eventually.TrueAsync(() => { lock (log.Pending) return log.Pending.Count == 2; }, Wait, "two appends started");
        Assert.Null(await Get(runtime, 0, "x"));

        // The later append becomes durable first; the earlier outcome must still be applied first, so x ends at 2.
        lock (log.Pending) log.Pending[1].SetResult();
        Assert.Null(await Get(runtime, 0, "x"));
        lock (log.Pending) log.Pending[0].SetResult();

        Assert.Equal(ErrorCode.None, await firstAnswer);
        Assert.Equal(ErrorCode.None, await secondAnswer);
        Assert.Equal(2, await Get(runtime, 0, "x"));
    }

    [Fact]
    public async Task A_failed_append_is_not_applied()
    {
        var log = new ControlledLog { Manual = true };
        await using var runtime = Runtime(_ => log);
        await runtime.Load(0);

        var answer = runtime.RunAsync(0, s => s.Set("x", 1), e => e);
        await Eventually.TrueAsync(() => { lock (log.Pending) return log.Pending.Count == 1; }, Wait, "append started");
        lock (log.Pending) log.Pending[0].SetException(new IOException("no space left on device"));

        Assert.Equal(ErrorCode.CoordinatorNotAvailable, await answer);
        Assert.Null(await Get(runtime, 0, "x"));
    }

    [Fact]
    public async Task Timers_run_on_the_loop_by_the_injected_clock_and_a_cancelled_one_never_fires()
    {
        var time = FakeTime.Create();
        await using var runtime = Runtime(_ => new ControlledLog(), time);
        await runtime.Load(0);
        var timers = await runtime.RunAsync(0, s => (
            Once: s.Context.Schedule(TimeSpan.FromSeconds(5), () => s.TimerFirings++),
            Cancelled: s.Context.Schedule(TimeSpan.FromSeconds(5), () => s.TimerFirings += 100)), _ => default);
        await runtime.RunAsync(0, s =>
        {
            timers.Cancelled.Dispose();
            return true;
        }, _ => false);

        time.Advance(4_999);
        Assert.Equal(0, await runtime.RunAsync(0, s => s.TimerFirings, _ => -1));
        time.Advance(1);

        Assert.Equal(1, await Eventually.ValueAsync(() => runtime.RunAsync(0, s => s.TimerFirings, _ => -1), n => n != 0, Wait, "the timer fired"));
        time.Advance(60_000);
        Assert.Equal(1, await runtime.RunAsync(0, s => s.TimerFirings, _ => -1));
    }

    [Fact]
    public async Task A_periodic_timer_fires_each_period_until_unload()
    {
        var time = FakeTime.Create();
        var log = new ControlledLog();
        await using var runtime = Runtime(_ => log, time);
        await runtime.Load(0);
        CounterShard? shard = null;
        await runtime.RunAsync(0, s =>
        {
            shard = s;
            s.Context.Schedule(TimeSpan.FromSeconds(1), () => s.TimerFirings++, TimeSpan.FromSeconds(1));
            return true;
        }, _ => false);

        for (var i = 1; i <= 3; i++)
        {
            time.Advance(1_000);
            var expected = i;
            await Eventually.ValueAsync(() => runtime.RunAsync(0, s => s.TimerFirings, _ => -1), n => n == expected, Wait, $"firing {i}");
        }
        await runtime.UnloadAsync(0);
        time.Advance(10_000);

        Assert.Equal(3, shard!.TimerFirings);
    }

    [Fact]
    public async Task Unloading_answers_parked_requests_delivers_appends_in_flight_and_refuses_later_ones()
    {
        var log = new ControlledLog { Manual = true };
        await using var runtime = Runtime(_ => log);
        await runtime.Load(0);
        var parked = runtime.RunAsync(0, s =>
        {
            var waiter = new TaskCompletionSource<ErrorCode>(TaskCreationOptions.RunContinuationsAsynchronously);
            s.Parked.Add(waiter);
            return waiter.Task;
        }, e => e);
        var write = runtime.RunAsync(0, s => s.Set("y", 7), e => e);
        await Eventually.TrueAsync(() => { lock (log.Pending) return log.Pending.Count == 1; }, Wait, "append started");

        var unload = runtime.UnloadAsync(0);
        Assert.False(unload.IsCompleted);
        lock (log.Pending) log.Pending[0].SetResult();
        await unload;

        Assert.Equal(ErrorCode.None, await write);
        Assert.Equal(ErrorCode.NotCoordinator, await parked);
        Assert.Equal(ErrorCode.NotCoordinator, await runtime.RunAsync(0, _ => ErrorCode.None, e => e));
        Assert.Equal(ShardStatus.NotLoaded, runtime.StatusOf(0));

        // What was durable comes back with the next load.
        log.Manual = false;
        Assert.Equal(ShardStatus.Loaded, await runtime.Load(0));
        Assert.Equal(7, await Get(runtime, 0, "y"));
    }

    [Fact]
    public async Task Exclusive_work_holds_the_loop_until_it_ends_and_shards_run_independently()
    {
        var log0 = new ControlledLog();
        var log1 = new ControlledLog();
        await using var runtime = Runtime(p => p == 0 ? log0 : log1);
        await runtime.Load(0);
        await runtime.Load(1);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var order = new List<string>();

        var exclusive = runtime.RunExclusiveAsync(0, async s =>
        {
            await gate.Task;
            lock (order) order.Add("exclusive");
            return true;
        }, _ => false);
        var after = runtime.RunAsync(0, s =>
        {
            lock (order) order.Add("after");
            return true;
        }, _ => false);

        // Shard 1 is not held by shard 0's work.
        Assert.True(await runtime.RunAsync(1, _ => true, _ => false));
        Assert.False(after.IsCompleted);
        gate.SetResult();
        await Task.WhenAll(exclusive, after);

        Assert.Equal(["exclusive", "after"], order);
    }

    [Fact]
    public async Task Operations_reach_every_loaded_shard_and_skip_the_others()
    {
        await using var runtime = Runtime(p => new ControlledLog { ReadFailure = p == 2 ? new IOException("bad") : null });
        foreach (var p in new[] { 0, 1, 2 }) await runtime.Load(p);

        var partitions = await runtime.RunOnAllAsync(s => s.Context.Partition);

        Assert.Equal([0, 1], partitions);
        Assert.False(runtime.AllLoaded);
    }

    /// <summary>Reads the runtime's instruments through a MeterListener, as an exporter would.</summary>
    private sealed class RuntimeMetrics : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, long> _values = [];

        public RuntimeMetrics(CoordinatorRuntimeCore runtime)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, runtime.Meter)) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Store(i, v, tags));
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Store(i, v, tags));
            _listener.Start();
        }

        private void Store(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var state = "";
            foreach (var tag in tags) if (tag.Key == "state") state = (string)tag.Value!;
            lock (_values) _values[instrument.Name + "/" + state] = value;
        }

        public long Gauge(string name, string state)
        {
            _listener.RecordObservableInstruments();
            lock (_values) return _values[name + "/" + state];
        }

        public long Counter(string name) => Gauge(name, "");

        public void Dispose() => _listener.Dispose();
    }
}
