using System.Collections.Concurrent;
using System.Globalization;
using Tributary.Storage.Cleaning;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Owns every partition log under one data directory, laid out as <c>&lt;dataDir&gt;/&lt;topic&gt;-&lt;partition&gt;/</c>
/// (Kafka's layout; topic names cannot contain '/', and the partition is whatever follows the last '-').
/// All its logs share one <see cref="LogFlusher"/>. Topic deletion renames the directories to
/// <c>&lt;name&gt;.&lt;id&gt;-delete</c> first (atomic), then deletes them; leftovers are removed at start.
/// </summary>
public sealed class LogManager : IDisposable
{
    private const string DeleteSuffix = "-delete";
    private readonly string _dataDir;
    private readonly TimeProvider _time;
    private readonly ISegmentFileSystem _fs;
    private readonly LogFlusher _flusher;
    private readonly ConcurrentDictionary<(string Topic, int Partition), PartitionLog> _logs = new();
    private readonly object _createLock = new();
    private readonly List<(string Topic, int Partition)> _discovered = [];
    private CancellationTokenSource? _stop;
    private Task? _retention;
    private LogCleaner? _cleaner;

    public LogManager(string dataDir, TimeProvider time)
        : this(dataDir, time, LocalFileSystem.Instance)
    {
    }

    internal LogManager(string dataDir, TimeProvider time, ISegmentFileSystem fs)
    {
        _dataDir = dataDir;
        _time = time;
        _fs = fs;
        _fs.CreateDirectory(dataDir);
        foreach (string directory in _fs.EnumerateDirectories(dataDir).ToList())
        {
            string name = Path.GetFileName(directory);
            if (name.EndsWith(DeleteSuffix, StringComparison.Ordinal))
            {
                _fs.DeleteDirectory(directory);
            }
            else if (TryParse(name, out var key))
            {
                _discovered.Add(key);
            }
        }

        _flusher = new LogFlusher("tributary-log-flusher:" + Path.GetFileName(dataDir));
    }

    public string DataDirectory => _dataDir;

    /// <summary>Partitions found on disk when the manager started.</summary>
    public IEnumerable<(string Topic, int Partition)> ExistingPartitions()
    {
        lock (_createLock)
        {
            return [.. _discovered];
        }
    }

    /// <summary>Partitions currently open.</summary>
    public IEnumerable<(string Topic, int Partition)> OpenPartitions() => _logs.Keys;

    public PartitionLog? Get(string topic, int partition) => _logs.TryGetValue((topic, partition), out var log) ? log : null;

    /// <summary>Opens (running recovery) or creates the partition's log. An already open log keeps its config: set <see cref="PartitionLog.Config"/> to alter it.</summary>
    public PartitionLog GetOrCreate(string topic, int partition, LogConfig config)
    {
        if (_logs.TryGetValue((topic, partition), out var existing))
        {
            return existing;
        }

        lock (_createLock)
        {
            if (_logs.TryGetValue((topic, partition), out existing))
            {
                return existing;
            }

            var log = PartitionLog.Open(PartitionDirectory(topic, partition), config, _time, _fs, _flusher);
            _logs[(topic, partition)] = log;
            return log;
        }
    }

    /// <summary>Closes and removes every partition of <paramref name="topic"/>, open or only on disk.</summary>
    public void DeleteTopic(string topic)
    {
        lock (_createLock)
        {
            foreach (var key in _logs.Keys.Where(k => k.Topic == topic).ToList())
            {
                if (_logs.TryRemove(key, out var log))
                {
                    log.Dispose();
                }
            }

            _discovered.RemoveAll(k => k.Topic == topic);
            foreach (string directory in _fs.EnumerateDirectories(_dataDir).ToList())
            {
                if (TryParse(Path.GetFileName(directory), out var key) && key.Topic == topic)
                {
                    string doomed = $"{directory}.{Guid.NewGuid():N}{DeleteSuffix}";
                    _fs.MoveDirectory(directory, doomed);
                    _fs.DeleteDirectory(doomed);
                }
            }
        }
    }

    /// <summary>The compaction thread, once started by <see cref="StartBackgroundTasks(long, CleanerOptions?)"/>.</summary>
    public LogCleaner? Cleaner => _cleaner;

    /// <summary>Runs <see cref="PartitionLog.EnforceRetention"/> on every open log every <paramref name="retentionCheckIntervalMs"/> (log.retention.check.interval.ms).</summary>
    public void StartBackgroundTasks(long retentionCheckIntervalMs) => StartBackgroundTasks(retentionCheckIntervalMs, new CleanerOptions());

    /// <summary>
    /// Starts retention (every <paramref name="retentionCheckIntervalMs"/>) and the log cleaner (one thread for all
    /// compacted logs of this manager; not started when <paramref name="cleaner"/> is null or disabled).
    /// </summary>
    /// <param name="observe">Called with the cleaner before its thread starts (to subscribe to its events).</param>
    public void StartBackgroundTasks(long retentionCheckIntervalMs, CleanerOptions? cleaner, Action<LogCleaner>? observe = null)
    {
        if (_retention is not null)
        {
            return;
        }

        if (cleaner is { Enabled: true })
        {
            _cleaner = new LogCleaner(() => _logs.Values, cleaner, _time);
            observe?.Invoke(_cleaner);
            _cleaner.Start();
        }

        _stop = new CancellationTokenSource();
        var token = _stop.Token;
        var period = TimeSpan.FromMilliseconds(retentionCheckIntervalMs);
        _retention = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(period, _time);
            try
            {
                while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
                {
                    EnforceRetentionOnce();
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    /// <summary>One retention pass over all open logs; returns segments removed.</summary>
    public int EnforceRetentionOnce()
    {
        int removed = 0;
        foreach (var log in _logs.Values)
        {
            try
            {
                removed += log.EnforceRetention();
            }
            catch (Exception e) when (e is StorageException or ObjectDisposedException or IOException)
            {
                // One failing partition must not stop retention for the others.
            }
        }

        return removed;
    }

    public async Task StopAsync()
    {
        var stop = _stop;
        var retention = _retention;
        if (stop is null || retention is null)
        {
            return;
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await retention.ConfigureAwait(false);
        _cleaner?.Dispose();
        _cleaner = null;
        _retention = null;
        stop.Dispose();
        _stop = null;
    }

    public void Dispose()
    {
        StopAsync().GetAwaiter().GetResult();
        foreach (var log in _logs.Values)
        {
            log.Dispose();
        }

        _logs.Clear();
        _flusher.Dispose();
    }

    private string PartitionDirectory(string topic, int partition) =>
        Path.Combine(_dataDir, $"{topic}-{partition.ToString(CultureInfo.InvariantCulture)}");

    private static bool TryParse(string name, out (string Topic, int Partition) key)
    {
        key = default;
        int dash = name.LastIndexOf('-');
        if (dash <= 0 || !int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int partition))
        {
            return false;
        }

        key = (name[..dash], partition);
        return true;
    }
}
