using System.Diagnostics;
using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// A data directory that really runs out of space: an 8 MiB tmpfs (needs root; the test says so and passes
/// vacuously otherwise). Producers get KAFKA_STORAGE_ERROR, consumers keep reading every acknowledged record,
/// and once space returns (a filler file is removed) producing works again without a restart.
/// </summary>
[Trait("Category", "Slow")]
public sealed class CompactionDiskFullTests : IAsyncLifetime
{
    private readonly string _mount = Path.Combine(Path.GetTempPath(), "tributary-full-" + Guid.NewGuid().ToString("N"));
    private bool _mounted;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_mount);
        _mounted = Run("mount", $"-t tmpfs -o size=8m tmpfs {_mount}");
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        if (_mounted)
        {
            Run("umount", $"-l {_mount}");
        }

        Directory.Delete(_mount, recursive: true);
        return Task.CompletedTask;
    }

    private static bool Run(string file, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_full_disk_fails_produce_with_storage_error_keeps_reads_and_recovers_when_space_returns()
    {
        if (!_mounted)
        {
            Console.WriteLine("SKIPPED: cannot mount a tmpfs here (not root?)");
            return;
        }

        string dataDir = Path.Combine(_mount, "data");
        string filler = Path.Combine(_mount, "filler");
        await File.WriteAllBytesAsync(filler, new byte[2 << 20]);
        var acked = new List<(long Offset, string Value)>();
        await using (var server = await TributaryServer.StartEphemeralAsync(dataDir))
        {
            using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
            {
                BootstrapServers = server.BootstrapServers,
                Acks = Acks.All,
                MessageSendMaxRetries = 0,
                EnableIdempotence = false,
                LingerMs = 0,
            }).Build();
            ProduceException<byte[]?, byte[]?>? failure = null;
            for (int i = 0; i < 20_000 && failure is null; i++)
            {
                string value = $"{i:D8}" + new string('x', 4000);
                try
                {
                    var report = await producer.ProduceAsync("full", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes(value) });
                    acked.Add((report.Offset.Value, value));
                }
                catch (ProduceException<byte[]?, byte[]?> e)
                {
                    failure = e;
                }
            }

            Assert.NotNull(failure);
            Assert.Equal(ErrorCode.KafkaStorageError, failure.Error.Code);
            Assert.True(acked.Count > 100);

            AssertReadsBack(server.BootstrapServers, acked);

            File.Delete(filler);
            var after = await producer.ProduceAsync("full", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes("after") });
            Assert.Equal(acked[^1].Offset + 1, after.Offset.Value);
            acked.Add((after.Offset.Value, "after"));
        }

        await using var restarted = await TributaryServer.StartEphemeralAsync(dataDir);
        AssertReadsBack(restarted.BootstrapServers, acked);
    }

    private static void AssertReadsBack(string bootstrap, List<(long Offset, string Value)> acked)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "r-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset("full", 0, Offset.Beginning));
        int next = 0;
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && next < acked.Count; r = next < acked.Count ? consumer.Consume(TimeSpan.FromMilliseconds(200)) : null)
            {
                if (r.IsPartitionEOF)
                {
                    continue;
                }

                Assert.Equal(acked[next].Offset, r.Offset.Value);
                Assert.Equal(acked[next].Value, Encoding.UTF8.GetString(r.Message.Value!));
                next++;
            }

            return next == acked.Count;
        }, TimeSpan.FromSeconds(30), "every acknowledged record", () => $"{next} of {acked.Count} read");
    }
}
