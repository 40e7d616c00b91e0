using Tributary.Broker.Metadata;
using Tributary.Protocol.Records;
using Tributary.Storage;
using Tributary.Storage.FileSystem;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 20 #5: a crash at any step of DeleteTopics must never bring the deleted records back. The catalog and its logs
/// run over a file system that "crashes" at the n-th step that changes the disk (every later call fails, as if the
/// process were gone); then a new catalog opens the same directory, as a restarted broker would, and re-creates the
/// topic. For every n until deletion completes: the topic is gone, no old directory survives, and the re-created topic
/// has a new id and empty logs.
/// </summary>
public sealed class TopicDeletionCrashTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-delcrash-" + Guid.NewGuid().ToString("N"));
    private readonly BrokerSettings _settings = new(new Dictionary<string, string>());

    public void Dispose()
    {
        foreach (var dir in (string[])[_dir, _dir + "-saved"])
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task A_crash_at_any_step_of_deletion_never_serves_the_old_records_again()
    {
        var completed = false;
        for (var crashAt = 0; !completed; crashAt++)
        {
            Assert.True(crashAt < 20, "deletion never completed");
            if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
            var crashing = new CrashingFileSystem();
            Guid oldId;
            using (var logs = new LogManager(_dir, TimeProvider.System, crashing))
            {
                var catalog = LocalCatalog.Open(_dir, logs, _settings);
                var topic = catalog.Create("orders", 2, new Dictionary<string, string>())!;
                oldId = topic.Id;
                for (var p = 0; p < 2; p++) await catalog.GetPartition("orders", p)!.AppendAsync(OneRecord("old"));
                crashing.CrashAfter(crashAt);
                catalog.Delete("orders");
                completed = !crashing.Crashed;
                crashing.CrashAfter(0); // from here on the "dead" process changes nothing, not even at shutdown
            }

            using (var logs = new LogManager(_dir, TimeProvider.System))
            {
                var catalog = LocalCatalog.Open(_dir, logs, _settings);
                Assert.Null(catalog.Get("orders"));
                logs.WaitForDeletions();
                Assert.DoesNotContain(Directory.GetDirectories(_dir), d => Path.GetFileName(d).StartsWith("orders-", StringComparison.Ordinal));
                var again = catalog.Create("orders", 2, new Dictionary<string, string>())!;
                Assert.NotEqual(oldId, again.Id);
                for (var p = 0; p < 2; p++) Assert.Equal(0, catalog.GetPartition("orders", p)!.LogEndOffset);
            }
        }
    }

    [Fact]
    public async Task A_directory_left_by_a_deleted_topic_is_never_adopted_by_a_new_topic_of_the_same_name()
    {
        // The state a crash between the catalog commit and the rename leaves, seen by a running broker and after a restart.
        using (var logs = new LogManager(_dir, TimeProvider.System))
        {
            var catalog = LocalCatalog.Open(_dir, logs, _settings);
            catalog.Create("orders", 1, new Dictionary<string, string>());
            await catalog.GetPartition("orders", 0)!.AppendAsync(OneRecord("old"));
        }

        var stale = Path.Combine(_dir, "orders-0");
        var saved = _dir + "-saved"; // outside the data directory, which would treat it as a stale partition
        CopyDirectory(stale, saved);
        using (var logs = new LogManager(_dir, TimeProvider.System))
        {
            var catalog = LocalCatalog.Open(_dir, logs, _settings);
            catalog.Delete("orders");
            CopyDirectory(saved, stale); // as if the rename had not happened
            catalog.Create("orders", 1, new Dictionary<string, string>());
            Assert.Equal(0, catalog.GetPartition("orders", 0)!.LogEndOffset);
            catalog.Delete("orders");
            CopyDirectory(saved, stale);
        }

        using (var logs = new LogManager(_dir, TimeProvider.System))
        {
            var catalog = LocalCatalog.Open(_dir, logs, _settings);
            logs.WaitForDeletions();
            Assert.False(Directory.Exists(stale));
            catalog.Create("orders", 1, new Dictionary<string, string>());
            Assert.Equal(0, catalog.GetPartition("orders", 0)!.LogEndOffset);
        }
    }

    private static byte[] OneRecord(string value) =>
        new RecordBatchBuilder().Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, System.Text.Encoding.UTF8.GetBytes(value)).Build();

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>
    /// The real disk until <see cref="CrashAfter"/>'s budget of disk-changing steps (renames, deletions, directory syncs)
    /// is spent; then every call fails. Background deletion of a -delete directory is not counted: it may or may not run
    /// before the crash, and both must be safe.
    /// </summary>
    private sealed class CrashingFileSystem : ISegmentFileSystem
    {
        private readonly ISegmentFileSystem _inner = LocalFileSystem.Instance;
        private int _budget = int.MaxValue;
        private volatile bool _crashed;

        public bool Crashed => _crashed;

        public void CrashAfter(int steps)
        {
            _budget = steps;
            if (steps == 0) _crashed = true;
        }

        private void Step()
        {
            Alive();
            if (Interlocked.Decrement(ref _budget) < 0)
            {
                _crashed = true;
                throw new IOException("simulated crash");
            }
        }

        private void Alive()
        {
            if (_crashed) throw new IOException("simulated crash: the process is gone");
        }

        public ISegmentFile OpenFile(string path, bool create)
        {
            Alive();
            return _inner.OpenFile(path, create);
        }

        public bool FileExists(string path) => _inner.FileExists(path);

        public void DeleteFile(string path)
        {
            Step();
            _inner.DeleteFile(path);
        }

        public void MoveFile(string from, string to)
        {
            Step();
            _inner.MoveFile(from, to);
        }

        public IEnumerable<string> EnumerateFiles(string directory) => _inner.EnumerateFiles(directory);
        public DateTimeOffset GetLastWriteTimeUtc(string path) => _inner.GetLastWriteTimeUtc(path);

        public void CreateDirectory(string path)
        {
            Alive();
            _inner.CreateDirectory(path);
        }

        public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
        public IEnumerable<string> EnumerateDirectories(string directory) => _inner.EnumerateDirectories(directory);

        public void MoveDirectory(string from, string to)
        {
            Step();
            _inner.MoveDirectory(from, to);
        }

        public void DeleteDirectory(string path)
        {
            Alive();
            _inner.DeleteDirectory(path);
        }

        public void SyncDirectory(string path)
        {
            Step();
            _inner.SyncDirectory(path);
        }
    }
}
