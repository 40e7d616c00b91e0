using System.Diagnostics;

namespace Tributary.Storage.FileSystem;

/// <summary>
/// A segment file of a <see cref="PooledFileSystem"/>: its path and, when open, the inner handle. Every operation
/// counts itself as a user for its duration; the pool closes the handle only when there are none, and the next
/// operation reopens it. The fast path (handle open) takes no lock and allocates nothing.
///
/// Protocol with <see cref="TryCloseIdle"/>: a user increments <c>_users</c> and then reads <c>_handle</c>; the closer
/// (holding the gate) takes the handle out first and then checks <c>_users</c>, putting it back if anyone came.
/// Both sides use interlocked operations, so either the user sees null (and reopens under the gate) or the closer
/// sees the user (and keeps the handle).
/// </summary>
internal sealed class PooledFile : ISegmentFile
{
    private readonly PooledFileSystem _pool;
    private readonly object _gate = new();
    private ISegmentFile? _handle;
    private int _users;
    private long _lastUsed;
    private bool _disposed;

    public PooledFile(PooledFileSystem pool, string path, ISegmentFile handle)
    {
        _pool = pool;
        Path = path;
        _handle = handle;
        _lastUsed = Stopwatch.GetTimestamp();
    }

    /// <summary>The current name; changed by the pool's renames.</summary>
    public string Path { get; internal set; }

    public long LastUsed => Volatile.Read(ref _lastUsed);

    public long Length
    {
        get
        {
            var handle = Acquire();
            try
            {
                return handle.Length;
            }
            finally
            {
                Release();
            }
        }
    }

    public int Read(long position, Span<byte> destination)
    {
        var handle = Acquire();
        try
        {
            return handle.Read(position, destination);
        }
        finally
        {
            Release();
        }
    }

    public void Write(long position, ReadOnlySpan<byte> source)
    {
        var handle = Acquire();
        try
        {
            handle.Write(position, source);
        }
        finally
        {
            Release();
        }
    }

    public void SetLength(long length)
    {
        var handle = Acquire();
        try
        {
            handle.SetLength(length);
        }
        finally
        {
            Release();
        }
    }

    public void Flush()
    {
        var handle = Acquire();
        try
        {
            handle.Flush();
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Closes the handle if nobody uses it; false when in use, already closed, or the gate is busy.</summary>
    internal bool TryCloseIdle()
    {
        if (!Monitor.TryEnter(_gate))
        {
            return false;
        }

        ISegmentFile? handle;
        try
        {
            handle = Interlocked.Exchange(ref _handle, null);
            if (handle is null)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _users, 0, 0) != 0)
            {
                Volatile.Write(ref _handle, handle);
                return false;
            }

            // Inside the gate, so a reopen (which registers after taking the gate) cannot be unregistered by this close.
            _pool.OnClosed(this, disposed: false);
        }
        finally
        {
            Monitor.Exit(_gate);
        }

        handle.Dispose();
        return true;
    }

    public void Dispose()
    {
        ISegmentFile? handle;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            handle = Interlocked.Exchange(ref _handle, null);
            _pool.OnClosed(this, disposed: true);
        }

        // A concurrent user keeps the inner handle alive until its operation ends (SafeHandle reference counting).
        handle?.Dispose();
    }

    private ISegmentFile Acquire()
    {
        Interlocked.Increment(ref _users);
        Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
        var handle = Volatile.Read(ref _handle);
        if (handle is not null)
        {
            return handle;
        }

        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                handle = Volatile.Read(ref _handle);
                if (handle is null)
                {
                    handle = _pool.Reopen(this);
                    Volatile.Write(ref _handle, handle);
                    _pool.OnOpened(this);
                }
            }
        }
        catch
        {
            Interlocked.Decrement(ref _users);
            throw;
        }

        return handle;
    }

    private void Release() => Interlocked.Decrement(ref _users);
}
