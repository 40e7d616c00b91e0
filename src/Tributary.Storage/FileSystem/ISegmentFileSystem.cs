namespace Tributary.Storage.FileSystem;

/// <summary>
/// The narrow seam under the log: everything the storage layer does to the disk goes through here, so
/// tests can count syncs, tear writes and fill the disk deterministically (see the fault-injecting
/// implementation in the tests).
/// </summary>
public interface ISegmentFileSystem
{
    /// <summary>Opens a file for reading and writing, creating it when <paramref name="create"/> is set.</summary>
    ISegmentFile OpenFile(string path, bool create);
    bool FileExists(string path);
    void DeleteFile(string path);
    /// <summary>Renames atomically, replacing the target.</summary>
    void MoveFile(string from, string to);
    IEnumerable<string> EnumerateFiles(string directory);
    DateTimeOffset GetLastWriteTimeUtc(string path);
    void CreateDirectory(string path);
    bool DirectoryExists(string path);
    IEnumerable<string> EnumerateDirectories(string directory);
    void MoveDirectory(string from, string to);
    void DeleteDirectory(string path);
    /// <summary>Makes created, renamed and deleted names in <paramref name="path"/> durable (fsync of the directory).</summary>
    void SyncDirectory(string path);
}

/// <summary>A file accessed by position only: no shared cursor, no user-space buffering.</summary>
public interface ISegmentFile : IDisposable
{
    string Path { get; }
    long Length { get; }
    /// <summary>Reads up to destination.Length bytes; fewer only at end of file.</summary>
    int Read(long position, Span<byte> destination);
    /// <summary>Writes all of <paramref name="source"/>; on failure some prefix may have been written.</summary>
    void Write(long position, ReadOnlySpan<byte> source);
    void SetLength(long length);
    /// <summary>Forces written data to stable storage (fsync).</summary>
    void Flush();
}
