namespace Tributary.Storage;

/// <summary>
/// One data directory of a <see cref="LogManager"/> (one entry of <c>log.dirs</c>) and its health, as Kafka's log
/// directory: an I/O failure on any file of any partition in it takes the whole directory offline
/// (<see cref="HandleIOException"/>, Kafka's <c>maybeHandleIOException</c>), because a disk that failed one write or
/// sync cannot be trusted with the next. From then on its partitions refuse every operation with
/// <see cref="StorageError.StorageFailure"/> (KAFKA_STORAGE_ERROR) without touching the disk, their waiting appends
/// fail, and background work (flusher, retention, cleaner) skips them; partitions of other directories are unaffected.
/// A directory goes offline once and stays offline until restart.
/// </summary>
public sealed class LogDirectory
{
    private readonly Action<LogDirectory>? _wentOffline;
    private Exception? _failure;
    private string? _failedOperation;

    internal LogDirectory(string path, bool isMetadata, Action<LogDirectory>? wentOffline)
    {
        Path = path;
        IsMetadata = isMetadata;
        _wentOffline = wentOffline;
    }

    /// <summary>The directory's full path.</summary>
    public string Path { get; }

    /// <summary>True for the first of <c>log.dirs</c>, which also holds the broker's own files (Kafka's metadata directory).</summary>
    public bool IsMetadata { get; }

    public bool IsOffline => Volatile.Read(ref _failure) is not null;

    /// <summary>The failure that took the directory offline; null while online.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// The one place an I/O failure on a file of this directory goes. The first call takes the directory offline
    /// (reported once through the manager: diagnostics, the offline-directory metric, failing its partitions' waiting
    /// appends, the <see cref="LogManager.LogDirectoryFailed"/> event); every call returns the
    /// <see cref="StorageException"/> (<see cref="StorageError.StorageFailure"/>) for the caller to throw.
    /// </summary>
    /// <param name="operation">What was being done ("append", "fsync", "roll", ...).</param>
    /// <param name="where">The partition directory or file it was done in.</param>
    public StorageException HandleIOException(string operation, string where, Exception e)
    {
        if (Interlocked.CompareExchange(ref _failure, e, null) is null)
        {
            _failedOperation = operation;
            _wentOffline?.Invoke(this);
        }

        return new StorageException(StorageError.StorageFailure,
            $"{operation} in {where} failed: {e.Message}; the log directory {Path} is offline", e);
    }

    /// <summary>What took the directory offline ("fsync", ...), null while online.</summary>
    public string? FailedOperation => _failedOperation;

    /// <summary>Throws the offline directory's <see cref="StorageError.StorageFailure"/> without touching the disk.</summary>
    internal void ThrowIfOffline(string where)
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw Offline(where, failure);
        }
    }

    internal StorageException Offline(string where) => Offline(where, Failure);

    private StorageException Offline(string where, Exception? failure) =>
        new(StorageError.StorageFailure, $"The log directory {Path} holding {where} is offline after an I/O failure", failure);

    /// <summary>Marks a directory that could not be opened at start offline (no partition of it is opened).</summary>
    internal void MarkOfflineAtStart(Exception e)
    {
        _failedOperation = "open";
        Volatile.Write(ref _failure, e);
    }

    /// <summary>ENOSPC: the disk is full, not failing (an append or cleaning pass that met it is undone and retried later).</summary>
    public static bool IsOutOfSpace(Exception e) => e is IOException { HResult: 28 } || (e is IOException && e.Message.Contains("No space left", StringComparison.Ordinal));

    public override string ToString() => Path;
}

/// <summary>A data directory that went offline: its partitions, and whether the broker must stop (Kafka halts then).</summary>
/// <param name="Directory">The directory, now offline.</param>
/// <param name="Partitions">The partitions placed in it.</param>
/// <param name="Fatal">It is the metadata directory, or no directory is left online.</param>
public sealed record LogDirectoryFailure(LogDirectory Directory, IReadOnlyList<(string Topic, int Partition)> Partitions, bool Fatal);
