namespace Tributary.Storage.FileSystem;

/// <summary>
/// Keeps at most about <see cref="Capacity"/> descriptors open for all the segment files of a data directory, so the
/// number of partitions and segments no longer decides how many descriptors the broker needs (Kafka keeps every
/// segment open and needs a large <c>ulimit -n</c>; here a partition that is not used costs none).
///
/// Every file handed out is a <see cref="PooledFile"/>: a path plus, while it is in use or recently used, an open
/// handle of the inner file system. When the count of open handles passes the capacity, the least recently used
/// idle ones are closed (down to 90 % of the capacity, so the scan that picks them runs once per many opens); a file
/// whose handle was closed reopens it by path on its next operation. Renames go through this class, which moves the
/// path of every live file with them, so a file renamed while closed (a retention <c>.deleted</c> rename, a cleaner
/// swap) reopens under its new name.
///
/// Running out of descriptors anyway (connections use them too) is not fatal: an open that fails with EMFILE/ENFILE
/// (or an opendir) closes half of the idle handles and retries once; a second failure is an <see cref="IOException"/>
/// saying so, which the log turns into KAFKA_STORAGE_ERROR for that request: never a crash.
///
/// Invariants: a handle is closed only while no operation uses it (<see cref="PooledFile"/> counts users); lock order
/// is a file's gate before this pool's lock, and eviction only ever tries (never waits for) a file's gate.
/// </summary>
public sealed class PooledFileSystem : ISegmentFileSystem
{
    private readonly ISegmentFileSystem _inner;
    private readonly object _lock = new();
    private readonly HashSet<PooledFile> _open = [];
    private readonly Dictionary<string, List<PooledFile>> _byPath = new(StringComparer.Ordinal);

    public PooledFileSystem(ISegmentFileSystem inner, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 8);
        _inner = inner;
        Capacity = capacity;
    }

    /// <summary>The most handles kept open once idle ones can be closed.</summary>
    public int Capacity { get; }

    /// <summary>Handles open right now.</summary>
    public int OpenHandles
    {
        get
        {
            lock (_lock)
            {
                return _open.Count;
            }
        }
    }

    public ISegmentFile OpenFile(string path, bool create)
    {
        var handle = OpenInner(path, create);
        var file = new PooledFile(this, path, handle);
        lock (_lock)
        {
            if (!_byPath.TryGetValue(path, out var list))
            {
                _byPath[path] = list = [];
            }

            list.Add(file);
        }

        OnOpened(file);
        return file;
    }

    public bool FileExists(string path) => _inner.FileExists(path);
    public void DeleteFile(string path) => _inner.DeleteFile(path);

    public void MoveFile(string from, string to)
    {
        lock (_lock)
        {
            _inner.MoveFile(from, to);
            if (_byPath.Remove(from, out var moved))
            {
                foreach (var file in moved)
                {
                    file.Path = to;
                }

                if (_byPath.TryGetValue(to, out var existing))
                {
                    existing.AddRange(moved);
                }
                else
                {
                    _byPath[to] = moved;
                }
            }
        }
    }

    public IEnumerable<string> EnumerateFiles(string directory) => WithDescriptor(() => _inner.EnumerateFiles(directory).ToList(), directory);
    public DateTimeOffset GetLastWriteTimeUtc(string path) => _inner.GetLastWriteTimeUtc(path);
    public void CreateDirectory(string path) => _inner.CreateDirectory(path);
    public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
    public IEnumerable<string> EnumerateDirectories(string directory) => WithDescriptor(() => _inner.EnumerateDirectories(directory).ToList(), directory);

    public void MoveDirectory(string from, string to)
    {
        lock (_lock)
        {
            _inner.MoveDirectory(from, to);
            string prefix = from.TrimEnd('/') + "/";
            foreach (string path in _byPath.Keys.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                _byPath.Remove(path, out var files);
                string moved = System.IO.Path.Combine(to, path[prefix.Length..]);
                foreach (var file in files!)
                {
                    file.Path = moved;
                }

                _byPath[moved] = files;
            }
        }
    }

    public void DeleteDirectory(string path) => _inner.DeleteDirectory(path);
    public void SyncDirectory(string path) => WithDescriptor(() =>
    {
        _inner.SyncDirectory(path);
        return true;
    }, path);

    /// <summary>Closes idle handles until at most <paramref name="target"/> stay open; returns how many it closed.</summary>
    public int CloseIdle(int target)
    {
        PooledFile[] candidates;
        lock (_lock)
        {
            if (_open.Count <= target)
            {
                return 0;
            }

            candidates = [.. _open];
        }

        // Oldest use first; a file used again meanwhile refuses to close and is skipped.
        Array.Sort(candidates, static (a, b) => a.LastUsed.CompareTo(b.LastUsed));
        int excess = candidates.Length - target, closed = 0;
        foreach (var file in candidates)
        {
            if (closed >= excess)
            {
                break;
            }

            if (file.TryCloseIdle())
            {
                closed++;
            }
        }

        return closed;
    }

    internal ISegmentFile Reopen(PooledFile file)
    {
        // Under the lock, so a rename cannot slip between reading the path and opening it.
        lock (_lock)
        {
            return OpenInner(file.Path, create: false);
        }
    }

    internal void OnOpened(PooledFile file)
    {
        int count;
        lock (_lock)
        {
            _open.Add(file);
            count = _open.Count;
        }

        if (count > Capacity)
        {
            CloseIdle(Capacity - (Capacity / 10));
        }
    }

    internal void OnClosed(PooledFile file, bool disposed)
    {
        lock (_lock)
        {
            _open.Remove(file);
            if (disposed && _byPath.TryGetValue(file.Path, out var list))
            {
                list.Remove(file);
                if (list.Count == 0)
                {
                    _byPath.Remove(file.Path);
                }
            }
        }
    }

    private ISegmentFile OpenInner(string path, bool create) => WithDescriptor(() => _inner.OpenFile(path, create), path);

    /// <summary>Runs an operation that needs a descriptor (open, opendir); out of descriptors, closes half the idle handles and tries once more.</summary>
    private T WithDescriptor<T>(Func<T> operation, string path)
    {
        try
        {
            return operation();
        }
        catch (IOException e) when (IsOutOfDescriptors(e))
        {
            int open = OpenHandles;
            CloseIdle(open / 2);
            try
            {
                return operation();
            }
            catch (IOException again) when (IsOutOfDescriptors(again))
            {
                // An IOException, which every storage path already treats as a recoverable failure of one operation.
                throw new IOException(
                    $"Cannot open {path}: the process is out of file descriptors ({again.Message}); {open} segment files were open. Raise `ulimit -n` or lower log.max.open.files.", again);
            }
        }
    }

    /// <summary>EMFILE (24, the process limit) or ENFILE (23, the system limit), as .NET reports them on Unix.</summary>
    public static bool IsOutOfDescriptors(IOException e) =>
        e.HResult is 23 or 24 || e.Message.Contains("Too many open files", StringComparison.OrdinalIgnoreCase);
}
