using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Storage.FileSystem;

namespace Tributary.Broker.Tests;

/// <summary>
/// Two log directories (log.dirs) and Kafka's log-directory failure through a real client: a disk failing under one
/// directory (injected through the storage's file-system seam, which works as root too) takes that directory offline;
/// its partitions answer KAFKA_STORAGE_ERROR and show offline in Metadata and DescribeLogDirs, the other directory's
/// partitions keep serving, and after a restart without the fault every acknowledged record is there. The metadata
/// directory failing stops the broker.
/// </summary>
public sealed class LogDirFailureTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "tributary-logdirs-" + Guid.NewGuid().ToString("N"));
    private string A => Path.Combine(_root, "a");
    private string B => Path.Combine(_root, "b");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private Task<TributaryServer> StartAsync(ISegmentFileSystem? fs)
    {
        var config = new BrokerConfig { ListenHost = "127.0.0.1", ListenPort = 0, StorageFileSystem = fs };
        config.Apply("log.dirs", $"{A},{B}");
        config.Settings[TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0";
        config.Settings[TributaryServer.ConsoleListenersSetting] = "";
        config.Settings["log.level"] = "error";
        return TributaryServer.StartAsync(config);
    }

    private static IProducer<string, string> Producer(string bootstrap) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = Acks.All,
            EnableIdempotence = false,
            MessageSendMaxRetries = 0,
            LingerMs = 0,
            MessageTimeoutMs = 20_000,
        }).Build();

    private static List<string> ReadAll(string bootstrap, TopicPartition partition, long endOffset)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "unused", EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(partition, Offset.Beginning));
        var values = new List<string>();
        var deadline = DateTime.UtcNow + Timeout;
        while (values.Count < endOffset && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false, Message: { } m }) values.Add(m.Value);
        }

        return values;
    }

    [Fact]
    public async Task A_failed_directory_goes_offline_while_the_other_serves_and_nothing_acknowledged_is_lost()
    {
        const string topic = "jbod";
        var fs = new FailingFileSystem();
        var acked = new Dictionary<int, List<string>>();
        int failedPartition, healthyPartition;
        var server = await StartAsync(fs);
        try
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 4, ReplicationFactor = 1 }]);
            var dirOf = Enumerable.Range(0, 4).ToDictionary(p => p, p => server.State.Topics.GetPartition(topic, p)!.LogDirectory!.Path);
            failedPartition = dirOf.First(p => p.Value == B).Key;
            healthyPartition = dirOf.First(p => p.Value == A).Key;
            Assert.True(Directory.Exists(Path.Combine(B, $"{topic}-{failedPartition}")));
            Assert.True(File.Exists(Path.Combine(B, "meta.properties"))); // written to every log directory, as Kafka

            using var producer = Producer(server.BootstrapServers);
            for (int p = 0; p < 4; p++)
            {
                acked[p] = [];
                for (int i = 0; i < 5; i++)
                {
                    var value = $"before-{p}-{i}";
                    await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string, string> { Key = "k", Value = value });
                    acked[p].Add(value);
                }
            }

            // Dir b's disk fails: the produce that meets it gets KAFKA_STORAGE_ERROR and the directory goes offline.
            fs.FailUnder = B + Path.DirectorySeparatorChar;
            var error = await Assert.ThrowsAsync<ProduceException<string, string>>(() =>
                producer.ProduceAsync(new TopicPartition(topic, failedPartition), new Message<string, string> { Key = "k", Value = "lost" }));
            Assert.Equal(ErrorCode.KafkaStorageError, error.Error.Code);
            Assert.True(server.State.Topics.IsPartitionOffline(topic, failedPartition));

            // Dir a's partition still round-trips.
            var report = await producer.ProduceAsync(new TopicPartition(topic, healthyPartition), new Message<string, string> { Key = "k", Value = "after" });
            acked[healthyPartition].Add("after");
            Assert.Equal(5, report.Offset.Value);
            Assert.Equal(acked[healthyPartition], ReadAll(server.BootstrapServers, new TopicPartition(topic, healthyPartition), 6));

            // Metadata: the failed partition has no leader and this broker offline; the healthy one is unchanged.
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build())
            {
                var partitions = admin.GetMetadata(topic, Timeout).Topics.Single().Partitions.ToDictionary(p => p.PartitionId);
                Assert.Equal(-1, partitions[failedPartition].Leader);
                Assert.Equal(ErrorCode.LeaderNotAvailable, partitions[failedPartition].Error.Code);
                Assert.Equal(server.State.NodeId, partitions[healthyPartition].Leader);
                Assert.Equal(ErrorCode.NoError, partitions[healthyPartition].Error.Code);
            }

            // DescribeLogDirs: both directories, b with KAFKA_STORAGE_ERROR and no partitions.
            await using (var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers))
            {
                var response = await raw.SendAsync<Tributary.Protocol.Messages.DescribeLogDirsResponse>(new Tributary.Protocol.Messages.DescribeLogDirsRequest(), 4);
                var dirs = response.Results.ToDictionary(r => r.LogDir);
                Assert.Equal([A, B], dirs.Keys.Order());
                Assert.Equal((short)Tributary.Protocol.Messages.ErrorCode.KafkaStorageError, dirs[B].ErrorCode);
                Assert.Empty(dirs[B].Topics);
                Assert.Equal(0, dirs[A].ErrorCode);
                Assert.Contains(dirs[A].Topics, t => t.Name == topic && t.Partitions.Any(p => p.PartitionIndex == healthyPartition));
            }

            Assert.False(server.Halted.IsCompleted); // a non-metadata directory: the broker goes on
        }
        finally
        {
            await server.StopAsync();
        }

        // Restart without the fault: every acknowledged record of every partition is there.
        server = await StartAsync(fs: null);
        try
        {
            for (int p = 0; p < 4; p++)
                Assert.Equal(acked[p], ReadAll(server.BootstrapServers, new TopicPartition(topic, p), acked[p].Count));
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Groups_whose_offsets_partition_is_in_the_failed_directory_move_to_not_coordinator()
    {
        var fs = new FailingFileSystem();
        var server = await StartAsync(fs);
        try
        {
            await server.Groups.WaitUntilLoadedAsync(Timeout);
            server.State.Topics.Create("user", 2, new Dictionary<string, string>());
            // The first commit creates __consumer_offsets, its partitions spread over both directories.
            var groups = Enumerable.Range(0, 40).Select(i => $"group-{i}").ToList();
            foreach (var group in groups)
                Assert.Equal(Tributary.Protocol.Messages.ErrorCode.None,
                    (await server.Groups.CommitOffsetsAsync(group, -1, "", null, [new Groups.OffsetToCommit("user", 0, 7, -1, "", -1)])).PartitionErrors.Single());
            string DirOf(string topic, int partition) => server.State.Topics.GetPartition(topic, partition)!.LogDirectory!.Path;
            var lost = groups.First(g => DirOf("__consumer_offsets", server.Groups.PartitionFor(g)) == B);
            var kept = groups.First(g => DirOf("__consumer_offsets", server.Groups.PartitionFor(g)) == A);
            var userInB = Enumerable.Range(0, 2).First(p => DirOf("user", p) == B);

            // Dir b fails under an append to a user partition; the coordinator shards whose partitions were there go.
            fs.FailUnder = B + Path.DirectorySeparatorChar;
            using (var producer = Producer(server.BootstrapServers))
            {
                var error = await Assert.ThrowsAsync<ProduceException<string, string>>(() =>
                    producer.ProduceAsync(new TopicPartition("user", userInB), new Message<string, string> { Key = "k", Value = "v" }));
                Assert.Equal(ErrorCode.KafkaStorageError, error.Error.Code);
            }
            await Eventually.TrueAsync(() => server.Groups.Runtime.StatusOf(server.Groups.PartitionFor(lost)) == Coordination.ShardStatus.NotLoaded,
                Timeout, "the shard of the failed directory's offsets partition is unloaded");

            Assert.Equal(Tributary.Protocol.Messages.ErrorCode.NotCoordinator, (await server.Groups.FetchOffsetsAsync(lost, null)).Error);
            var (error2, offsets) = await server.Groups.FetchOffsetsAsync(kept, null);
            Assert.Equal(Tributary.Protocol.Messages.ErrorCode.None, error2);
            Assert.Equal(7, offsets.Single().Offset!.Offset);
            Assert.False(server.Halted.IsCompleted);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task The_metadata_directory_failing_stops_the_broker()
    {
        var fs = new FailingFileSystem();
        var server = await StartAsync(fs);
        try
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build())
                await admin.CreateTopicsAsync([new TopicSpecification { Name = "meta", NumPartitions = 4, ReplicationFactor = 1 }]);
            int inA = Enumerable.Range(0, 4).First(p => server.State.Topics.GetPartition("meta", p)!.LogDirectory!.IsMetadata);
            using var producer = Producer(server.BootstrapServers);
            fs.FailUnder = A + Path.DirectorySeparatorChar;
            var error = await Assert.ThrowsAsync<ProduceException<string, string>>(() =>
                producer.ProduceAsync(new TopicPartition("meta", inA), new Message<string, string> { Key = "k", Value = "v" }));
            Assert.Equal(ErrorCode.KafkaStorageError, error.Error.Code);
            var reason = await server.Halted.WaitAsync(Timeout);
            Assert.Contains(A, reason, StringComparison.Ordinal);
            // Stopped: the listener no longer accepts connections.
            await Eventually.TrueAsync(async () =>
            {
                try
                {
                    await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
                    return false;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    return true;
                }
            }, Timeout, "the listener to close");
        }
        finally
        {
            await server.StopAsync();
        }
    }

    /// <summary>The real file system, with writes and syncs of files under <see cref="FailUnder"/> failing with EIO.</summary>
    private sealed class FailingFileSystem : ISegmentFileSystem
    {
        private readonly ISegmentFileSystem _inner = LocalFileSystem.Instance;
        public volatile string? FailUnder;

        private bool Failing(string path) => FailUnder is { } prefix && path.StartsWith(prefix, StringComparison.Ordinal);

        public ISegmentFile OpenFile(string path, bool create) => new File(this, _inner.OpenFile(path, create));
        public bool FileExists(string path) => _inner.FileExists(path);
        public void DeleteFile(string path) => _inner.DeleteFile(path);
        public void MoveFile(string from, string to) => _inner.MoveFile(from, to);
        public IEnumerable<string> EnumerateFiles(string directory) => _inner.EnumerateFiles(directory);
        public DateTimeOffset GetLastWriteTimeUtc(string path) => _inner.GetLastWriteTimeUtc(path);
        public void CreateDirectory(string path) => _inner.CreateDirectory(path);
        public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
        public IEnumerable<string> EnumerateDirectories(string directory) => _inner.EnumerateDirectories(directory);
        public void MoveDirectory(string from, string to) => _inner.MoveDirectory(from, to);
        public void DeleteDirectory(string path) => _inner.DeleteDirectory(path);
        public void SyncDirectory(string path)
        {
            if (Failing(path + Path.DirectorySeparatorChar)) throw new IOException("Input/output error", 5);
            _inner.SyncDirectory(path);
        }

        private sealed class File(FailingFileSystem fs, ISegmentFile inner) : ISegmentFile
        {
            public string Path => inner.Path;
            public long Length => inner.Length;
            public int Read(long position, Span<byte> destination) => inner.Read(position, destination);

            public void Write(long position, ReadOnlySpan<byte> source)
            {
                if (fs.Failing(Path)) throw new IOException("Input/output error", 5);
                inner.Write(position, source);
            }

            public void SetLength(long length) => inner.SetLength(length);

            public void Flush()
            {
                if (fs.Failing(Path)) throw new IOException("Input/output error", 5);
                inner.Flush();
            }

            public void Dispose() => inner.Dispose();
        }
    }
}
