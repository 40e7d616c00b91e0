using System.Collections.Concurrent;
using System.Globalization;
using Tributary.Storage.Cleaning;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Owns every partition log under its data directories (<c>log.dirs</c>; usually one), each laid out as <c>&lt;dataDir&gt;/&lt;topic&gt;-&lt;partition&gt;/</c>
/// (Kafka's layout; topic names cannot contain '/', and the partition is whatever follows the last '-').
/// All its logs share one <see cref="LogFlusher"/> and one <see cref="PooledFileSystem"/>, which bounds the descriptors
/// their segment files hold (log.max.open.files).
///
/// Topic incarnations: each partition directory carries the id of the topic it belongs to
/// (<see cref="PartitionMetadataFile"/>). A directory is adopted only by the topic of that id; a directory with
/// another id (or, for a topic being created, any directory at all) is stale and is deleted, never served.
///
/// Deletion: the caller first removes the topic from its durable catalog (the commit point), then
/// <see cref="DeleteTopic"/> renames each directory to Kafka's <c>&lt;topic&gt;-&lt;p&gt;.&lt;uniqueId&gt;-delete</c>,
/// syncs the data directory, and removes the renamed directories in the background. A crash at any point leaves
/// either a directory the catalog no longer names (removed at the next start by <see cref="RemoveStale"/>) or a
/// <c>-delete</c> directory (removed at start); neither is ever opened again.
///
/// Several data directories (JBOD), as Kafka: the first is the metadata directory (the broker keeps its own files
/// there). At start every directory is scanned; a partition found in two refuses the start. A new partition goes to the
/// online directory holding the fewest partitions (first in order on a tie). An I/O failure on a partition's files
/// takes its whole directory offline (<see cref="LogDirectory.HandleIOException"/>): its partitions fail every operation
/// with <see cref="StorageError.StorageFailure"/>, the others go on. A directory that cannot be opened at start starts
/// offline, unless it is the metadata directory (the start fails). <see cref="LogDirectoryFailed"/> tells the host,
/// which stops the broker when <see cref="LogDirectoryFailure.Fatal"/> (the metadata directory, or every directory).
/// </summary>
public sealed class LogManager : IDisposable
{
    private const string DeleteSuffix = "-delete";
    private readonly string _dataDir;
    private readonly LogDirectory[] _dirs;
    private readonly Dictionary<(string Topic, int Partition), LogDirectory> _placement = [];
    private readonly bool _offlineAtStart;
    private readonly TimeProvider _time;
    private readonly ISegmentFileSystem _fs;
    private readonly PooledFileSystem? _pool;
    private readonly LogFlusher _flusher;
    private readonly ConcurrentDictionary<(string Topic, int Partition), PartitionLog> _logs = new();
    private readonly object _createLock = new();
    private readonly List<(string Topic, int Partition)> _discovered = [];
    private readonly List<Task> _deletions = [];
    private CancellationTokenSource? _stop;
    private Task? _retention;
    private LogCleaner? _cleaner;

    /// <param name="maxOpenFiles">Segment files kept open at most (log.max.open.files); 0 or less for <see cref="OpenFileLimit.DefaultSegmentFiles"/>.</param>
    public LogManager(string dataDir, TimeProvider time, int maxOpenFiles = 0)
        : this(dataDir, time, new PooledFileSystem(LocalFileSystem.Instance, maxOpenFiles > 0 ? maxOpenFiles : OpenFileLimit.DefaultSegmentFiles()))
    {
    }

    /// <summary>Over another file system (tests inject faults and crashes through it); no descriptor pool unless <paramref name="fs"/> is one.</summary>
    public LogManager(string dataDir, TimeProvider time, ISegmentFileSystem fs)
        : this([dataDir], time, fs)
    {
    }

    /// <summary>Over several data directories (<c>log.dirs</c>), the first being the metadata directory.</summary>
    /// <param name="maxOpenFiles">As for one directory: the pool is shared by all.</param>
    public LogManager(IReadOnlyList<string> dataDirs, TimeProvider time, int maxOpenFiles = 0)
        : this(dataDirs, time, new PooledFileSystem(LocalFileSystem.Instance, maxOpenFiles > 0 ? maxOpenFiles : OpenFileLimit.DefaultSegmentFiles()))
    {
    }

    /// <summary>Over several data directories and another file system.</summary>
    /// <exception cref="StorageException">StorageFailure when the metadata directory cannot be opened, or a partition is in two directories.</exception>
    public LogManager(IReadOnlyList<string> dataDirs, TimeProvider time, ISegmentFileSystem fs)
    {
        ArgumentNullException.ThrowIfNull(dataDirs);
        if (dataDirs.Count == 0)
        {
            throw new ArgumentException("At least one data directory is needed.", nameof(dataDirs));
        }

        if (dataDirs.Distinct(StringComparer.Ordinal).Count() != dataDirs.Count)
        {
            throw new ArgumentException($"A data directory is listed twice in {string.Join(",", dataDirs)}.", nameof(dataDirs));
        }

        _dataDir = dataDirs[0];
        _time = time;
        _fs = fs;
        _pool = fs as PooledFileSystem;
        _dirs = [.. dataDirs.Select((d, i) => new LogDirectory(d, i == 0, OnDirectoryOffline))];
        foreach (var dir in _dirs)
        {
            List<string> children;
            try
            {
                _fs.CreateDirectory(dir.Path);
                children = _fs.EnumerateDirectories(dir.Path).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (dir.IsMetadata)
                {
                    throw new StorageException(StorageError.StorageFailure, $"The metadata log directory {dir.Path} cannot be opened: {e.Message}", e);
                }

                // As Kafka: a data directory that cannot be opened starts offline, with its partitions.
                dir.MarkOfflineAtStart(e);
                _offlineAtStart = true;
                continue;
            }

            foreach (string directory in children)
            {
                string name = Path.GetFileName(directory);
                if (name.EndsWith(DeleteSuffix, StringComparison.Ordinal))
                {
                    DeleteInBackground(directory);
                }
                else if (TryParse(name, out var key))
                {
                    if (_placement.TryGetValue(key, out var other))
                    {
                        throw new StorageException(StorageError.StorageFailure,
                            $"The partition {name} is in two log directories, {other.Path} and {dir.Path}; remove one copy before starting.");
                    }

                    _placement[key] = dir;
                    _discovered.Add(key);
                }
            }
        }

        Metrics = new StorageMetrics(this);
        _flusher = new LogFlusher("tributary-log-flusher:" + Path.GetFileName(_dataDir), Metrics);
    }

    /// <summary>The first (metadata) data directory.</summary>
    public string DataDirectory => _dataDir;

    /// <summary>Every data directory, the metadata directory first.</summary>
    public IReadOnlyList<LogDirectory> Directories => _dirs;

    /// <summary>
    /// Raised once per directory that goes offline (on a pool thread, after its partitions' waiting appends failed).
    /// <see cref="LogDirectoryFailure.Fatal"/> when it is the metadata directory or no directory is left online: Kafka halts
    /// the broker then, and the host should stop.
    /// </summary>
    public event Action<LogDirectoryFailure>? LogDirectoryFailed;

    /// <summary>The directory holding the partition (where it would be created when it is not placed yet: null).</summary>
    public LogDirectory? DirectoryOf(string topic, int partition)
    {
        lock (_createLock)
        {
            return _placement.GetValueOrDefault((topic, partition));
        }
    }

    /// <summary>
    /// True when the partition is in an offline directory, or, when a directory was offline from the start, the
    /// partition is on no online directory (it may be on the offline one: creating it empty could hide its records).
    /// </summary>
    public bool IsOffline(string topic, int partition)
    {
        lock (_createLock)
        {
            return _placement.TryGetValue((topic, partition), out var dir) ? dir.IsOffline : _offlineAtStart;
        }
    }

    /// <summary>Partitions (open or found at start) whose directory is offline.</summary>
    public IReadOnlyList<(string Topic, int Partition)> OfflinePartitions()
    {
        lock (_createLock)
        {
            return [.. _placement.Where(p => p.Value.IsOffline).Select(p => p.Key)];
        }
    }

    private void OnDirectoryOffline(LogDirectory dir)
    {
        var error = dir.Failure!;
        Diagnostics.Report($"{dir.FailedOperation ?? "I/O"} (log directory offline until restart)", dir.Path, error);
        bool fatal = dir.IsMetadata || _dirs.All(d => d.IsOffline);
        // Off the failing thread: it may hold that log's locks (taking the manager's lock here could deadlock with a
        // topic deletion closing that log), and the host's handlers must not run under them.
        _ = Task.Run(() =>
        {
            var offline = dir.Offline("its partitions");
            foreach (var log in _logs.Values.Where(l => ReferenceEquals(l.LogDirectory, dir)))
            {
                log.FailPending(offline);
            }

            List<(string Topic, int Partition)> partitions;
            lock (_createLock)
            {
                partitions = [.. _placement.Where(p => ReferenceEquals(p.Value, dir)).Select(p => p.Key)];
            }

            try
            {
                LogDirectoryFailed?.Invoke(new LogDirectoryFailure(dir, partitions, fatal));
            }
            catch (Exception e)
            {
                Diagnostics.Report("log directory failure subscriber", dir.Path, e);
            }
        });
    }

    /// <summary>Failures met in the background (syncs, retention, snapshots, directories going offline); the host logs them.</summary>
    public StorageDiagnostics Diagnostics { get; } = new();

    /// <summary>This manager's storage instruments (flushes, log sizes, offline directories).</summary>
    public StorageMetrics Metrics { get; }

    /// <summary>Segment file descriptors open now (the pool's count); -1 without a pool.</summary>
    public int OpenFileHandles => _pool?.OpenHandles ?? -1;

    /// <summary>The most segment file descriptors kept open (log.max.open.files); -1 without a pool.</summary>
    public int MaxOpenFiles => _pool?.Capacity ?? -1;

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
    public PartitionLog GetOrCreate(string topic, int partition, LogConfig config) => GetOrCreate(topic, partition, config, topicId: null, fresh: false);

    /// <summary>
    /// Opens or creates the partition's log for the topic incarnation <paramref name="topicId"/>. A directory of another
    /// incarnation is deleted first; so is any directory when <paramref name="fresh"/> (the topic is being created now).
    /// A directory without an id (written before ids existed) is adopted and stamped, unless fresh.
    /// </summary>
    public PartitionLog GetOrCreate(string topic, int partition, LogConfig config, Guid? topicId, bool fresh)
    {
        if (!fresh && _logs.TryGetValue((topic, partition), out var existing))
        {
            return existing;
        }

        lock (_createLock)
        {
            if (_logs.TryGetValue((topic, partition), out existing))
            {
                if (!fresh)
                {
                    return existing;
                }

                _logs.TryRemove((topic, partition), out _);
                existing.Dispose();
            }

            var key = (topic, partition);
            var dir = Place(key, fresh);
            string directory = PartitionDirectory(dir, topic, partition);
            PartitionLog log;
            try
            {
                if (topicId is { } id && _fs.DirectoryExists(directory))
                {
                    var stamped = PartitionMetadataFile.Read(_fs, directory);
                    if (fresh || (stamped is { } other && other != id))
                    {
                        MarkDeleted([directory]);
                    }
                }

                _placement[key] = dir;
                log = PartitionLog.Open(directory, config, _time, _fs, _flusher, Diagnostics, dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _placement.Remove(key);
                // A full disk fails this creation only, as a full disk fails an append only: the directory stays
                // online for the partitions it holds (a coordinator creating its topic on a full disk must not stop
                // the broker's reads).
                if (LogDirectory.IsOutOfSpace(e)) throw new StorageException(StorageError.StorageFailure, $"open in {directory} failed: {e.Message}", e);
                throw dir.HandleIOException("open", directory, e);
            }

            try
            {
                if (topicId is { } stamp && PartitionMetadataFile.Read(_fs, directory) != stamp)
                {
                    PartitionMetadataFile.Write(_fs, directory, stamp);
                }
            }
            catch (Exception e)
            {
                log.Dispose();
                if (e is IOException && LogDirectory.IsOutOfSpace(e))
                {
                    _placement.Remove(key);
                    throw new StorageException(StorageError.StorageFailure, $"partition metadata in {directory} failed: {e.Message}", e);
                }

                if (e is IOException or UnauthorizedAccessException)
                {
                    throw dir.HandleIOException("partition metadata", directory, e);
                }

                throw;
            }

            _logs[key] = log;
            return log;
        }
    }

    /// <summary>
    /// The partition's directory: where it is (an offline one refuses), else the online directory holding the fewest
    /// partitions (Kafka's default placement). A partition not found on any directory while one is offline from the
    /// start is refused unless <paramref name="fresh"/>: it may be on the offline one.
    /// </summary>
    private LogDirectory Place((string Topic, int Partition) key, bool fresh)
    {
        string name = $"{key.Topic}-{key.Partition.ToString(CultureInfo.InvariantCulture)}";
        if (_placement.TryGetValue(key, out var placed))
        {
            if (placed.IsOffline)
            {
                if (!fresh)
                {
                    throw placed.Offline(name);
                }
            }
            else
            {
                return placed;
            }
        }
        else if (_offlineAtStart && !fresh)
        {
            throw new StorageException(StorageError.StorageFailure,
                $"The partition {name} is on no online log directory and may be on an offline one ({string.Join(", ", _dirs.Where(d => d.IsOffline))}).");
        }

        var counts = _placement.Values.GroupBy(d => d).ToDictionary(g => g.Key, g => g.Count());
        return _dirs.Where(d => !d.IsOffline).MinBy(d => counts.GetValueOrDefault(d))
            ?? throw new StorageException(StorageError.StorageFailure, $"Every log directory is offline; {name} cannot be created.");
    }

    /// <summary>
    /// At start, after the catalog is loaded: deletes every partition directory the catalog does not place on this
    /// broker (a topic deleted or half-created before a crash, a partition beyond the topic's count, a replica moved
    /// away) or whose stamped topic id is not the catalog's. <paramref name="expectedId"/> answers the topic id a
    /// partition should carry here, or null when it should not be here. Returns the directories removed.
    /// </summary>
    public IReadOnlyList<string> RemoveStale(Func<string, int, Guid?> expectedId)
    {
        lock (_createLock)
        {
            var stale = new List<string>();
            foreach (var key in _discovered.ToList())
            {
                var dir = _placement[key];
                if (dir.IsOffline)
                {
                    continue; // not touched: judged at a start where its directory is readable
                }

                string directory = PartitionDirectory(dir, key.Topic, key.Partition);
                bool keep = false;
                if (expectedId(key.Topic, key.Partition) is { } id)
                {
                    var stamped = PartitionMetadataFile.Read(_fs, directory);
                    keep = stamped is null || stamped == id;
                }

                if (!keep)
                {
                    stale.Add(directory);
                    _discovered.Remove(key);
                    _placement.Remove(key);
                }
            }

            MarkDeleted(stale);
            return stale;
        }
    }

    /// <summary>Closes every partition of <paramref name="topic"/>, open or only on disk, and deletes their directories (crash-safe, see the class comment).</summary>
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
            foreach (var key in _placement.Keys.Where(k => k.Topic == topic).ToList())
            {
                _placement.Remove(key);
            }

            // An offline directory is left alone: its copies are stale once the catalog dropped the topic, and the next
            // start that can read it removes them (RemoveStale).
            MarkDeleted(_dirs.Where(d => !d.IsOffline)
                .SelectMany(d => _fs.EnumerateDirectories(d.Path))
                .Where(d => TryParse(Path.GetFileName(d), out var key) && key.Topic == topic)
                .ToList());
        }
    }

    /// <summary>Closes a partition whose creation was not committed and deletes its directory; failures are left to the next start.</summary>
    public void Discard(string topic, int partition)
    {
        lock (_createLock)
        {
            if (_logs.TryRemove((topic, partition), out var log))
            {
                log.Dispose();
            }

            if (!_placement.Remove((topic, partition), out var dir) || dir.IsOffline)
            {
                return;
            }

            string directory = PartitionDirectory(dir, topic, partition);
            try
            {
                if (_fs.DirectoryExists(directory))
                {
                    MarkDeleted([directory]);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not in the catalog: RemoveStale deletes it at the next start.
            }
        }
    }

    /// <summary>Renames the directories to <c>-delete</c> names, makes the renames durable, and deletes them in the background.</summary>
    private void MarkDeleted(IReadOnlyList<string> directories)
    {
        if (directories.Count == 0)
        {
            return;
        }

        var doomed = new List<string>(directories.Count);
        foreach (string directory in directories)
        {
            string target = $"{directory}.{Guid.NewGuid():N}{DeleteSuffix}";
            _fs.MoveDirectory(directory, target);
            doomed.Add(target);
        }

        foreach (string parent in doomed.Select(d => Path.GetDirectoryName(d)!).Distinct(StringComparer.Ordinal))
        {
            _fs.SyncDirectory(parent);
        }

        foreach (string directory in doomed)
        {
            DeleteInBackground(directory);
        }
    }

    private void DeleteInBackground(string directory)
    {
        lock (_deletions)
        {
            _deletions.RemoveAll(t => t.IsCompleted);
            _deletions.Add(Task.Run(() =>
            {
                try
                {
                    _fs.DeleteDirectory(directory);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left for the next start, which deletes every -delete directory.
                }
            }));
        }
    }

    /// <summary>Waits for the background deletion of <c>-delete</c> directories started so far.</summary>
    public void WaitForDeletions()
    {
        Task[] pending;
        lock (_deletions)
        {
            pending = [.. _deletions];
        }

        Task.WaitAll(pending);
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
            _cleaner = new LogCleaner(() => _logs.Values.Where(l => !l.IsOffline), cleaner, _time);
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
            if (log.IsOffline)
            {
                continue; // an offline directory is not touched again
            }

            try
            {
                removed += log.EnforceRetention();
            }
            catch (ObjectDisposedException)
            {
                // Deleted or closed meanwhile.
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One failing partition must not stop retention for the others.
                Diagnostics.Report("retention", log.Directory, e);
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
        Metrics.Dispose();
        WaitForDeletions();
    }

    private static string PartitionDirectory(LogDirectory dir, string topic, int partition) =>
        Path.Combine(dir.Path, $"{topic}-{partition.ToString(CultureInfo.InvariantCulture)}");

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
