using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tributary.Storage.FileSystem;

/// <summary>
/// The real disk: SafeFileHandle + RandomAccess (pread/pwrite, no user-space buffering). Syncs use fdatasync on
/// Linux (data and the size, not the timestamps: what a log needs, and cheaper), RandomAccess.FlushToDisk elsewhere.
/// </summary>
public sealed partial class LocalFileSystem : ISegmentFileSystem
{
    public static LocalFileSystem Instance { get; } = new();

    public ISegmentFile OpenFile(string path, bool create) => new LocalFile(path,
        File.OpenHandle(path, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete));

    public bool FileExists(string path) => File.Exists(path);
    public void DeleteFile(string path) => File.Delete(path);
    public void MoveFile(string from, string to) => File.Move(from, to, overwrite: true);
    public IEnumerable<string> EnumerateFiles(string directory) => Directory.EnumerateFiles(directory);
    public DateTimeOffset GetLastWriteTimeUtc(string path) => File.GetLastWriteTimeUtc(path);
    public void CreateDirectory(string path) => Directory.CreateDirectory(path);
    public bool DirectoryExists(string path) => Directory.Exists(path);
    public IEnumerable<string> EnumerateDirectories(string directory) => Directory.EnumerateDirectories(directory);
    public void MoveDirectory(string from, string to) => Directory.Move(from, to);
    public void DeleteDirectory(string path) => Directory.Delete(path, recursive: true);

    /// <summary>
    /// fsync of a directory, so a new segment file or a rename survives power loss (POSIX requires it; an
    /// fsync of the file alone does not cover its name). .NET cannot open a directory, hence libc. A no-op
    /// off Linux/macOS.
    /// </summary>
    public void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        int fd = NativeOpen(path, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open directory {path} to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (NativeFsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {path} failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = NativeClose(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int NativeFdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int NativeClose(int fd);

    private sealed class LocalFile(string path, SafeFileHandle handle) : ISegmentFile
    {
        public string Path { get; } = path;
        public long Length => RandomAccess.GetLength(handle);

        public int Read(long position, Span<byte> destination)
        {
            int total = 0;
            while (total < destination.Length)
            {
                int n = RandomAccess.Read(handle, destination[total..], position + total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }

        public void Write(long position, ReadOnlySpan<byte> source) => RandomAccess.Write(handle, source, position);
        public void SetLength(long length) => RandomAccess.SetLength(handle, length);
        public void Flush()
        {
            if (!OperatingSystem.IsLinux())
            {
                RandomAccess.FlushToDisk(handle);
                return;
            }

            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                if (NativeFdatasync((int)handle.DangerousGetHandle()) != 0)
                {
                    throw new IOException($"fdatasync of {Path} failed (errno {Marshal.GetLastPInvokeError()}).");
                }
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }
        public void Dispose() => handle.Dispose();
    }
}
