using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// Durability against a real crash: a `tributary serve` process is killed with SIGKILL while a producer with acks=all
/// has requests in flight, then restarted on the same data directory. Every record whose delivery was acknowledged
/// must still be there, at the offset the acknowledgement named, with its value, and the offsets must stay dense.
/// </summary>
[Trait("Category", "Slow")]
public sealed class KillTests(ITestOutputHelper output)
{
    private const string Topic = "kill-test";
    private const int Rounds = 3;
    private const int AcksPerRound = 2500;

    [Fact]
    public async Task Kill_9_during_produce_loses_no_acknowledged_record()
    {
        var cli = await LocateCliAsync();
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-kill-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        var acked = new ConcurrentDictionary<long, string>();
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                using var serve = await ServeProcess.StartAsync(cli, dataDir, port, output);
                if (round == 0)
                {
                    using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
                    await admin.CreateTopicsAsync([new TopicSpecification { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }]);
                }
                else
                {
                    VerifyLog(bootstrap, acked);
                }

                var before = acked.Count;
                await ProduceUntilKilledAsync(bootstrap, round, acked, before + AcksPerRound, serve);
                output.WriteLine($"round {round}: {acked.Count - before} acknowledged before the kill");
                Assert.True(acked.Count - before >= AcksPerRound);
            }

            using var last = await ServeProcess.StartAsync(cli, dataDir, port, output);
            VerifyLog(bootstrap, acked);
        }
        finally
        {
            try
            {
                Directory.Delete(dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// Produces numbered records until <paramref name="killAt"/> acknowledgements have arrived, then SIGKILLs the broker
    /// while the producer still has requests in flight. Returns once the producer has reported on every record.
    /// </summary>
    private async Task ProduceUntilKilledAsync(string bootstrap, int round, ConcurrentDictionary<long, string> acked, int killAt, ServeProcess serve)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = Acks.All,
            LingerMs = 2,
            EnableIdempotence = false,
            MessageTimeoutMs = 4000,
            SocketTimeoutMs = 3000,
        };
        var threshold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inFlight = new SemaphoreSlim(2000);
        var conflicts = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        // Connection-refused noise after the kill is expected; the delivery reports are what the test judges.
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(config).SetLogHandler((_, _) => { }).Build())
        {
            void OnDelivery(DeliveryReport<byte[]?, byte[]?> report)
            {
                if (report.Error.Code == ErrorCode.NoError && report.Status == PersistenceStatus.Persisted)
                {
                    var value = Encoding.UTF8.GetString(report.Message.Value!);
                    if (!acked.TryAdd(report.Offset.Value, value) && acked[report.Offset.Value] != value)
                        conflicts.Enqueue($"offset {report.Offset.Value} acknowledged for both {acked[report.Offset.Value]} and {value}");
                    if (acked.Count >= killAt) threshold.TrySetResult();
                }
                inFlight.Release();
            }

            var producing = Task.Run(async () =>
            {
                for (var i = 0; i < 10_000_000 && !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        await inFlight.WaitAsync(stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    producer.Produce(Topic, new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes($"r{round}-{i}") }, OnDelivery);
                }
            });

            var reached = await Task.WhenAny(threshold.Task, producing, Task.Delay(TimeSpan.FromSeconds(60)));
            Assert.True(reached == threshold.Task, $"only {acked.Count} of {killAt} acknowledged before giving up");
            serve.Kill();
            await stop.CancelAsync();
            await producing;
            // Records in flight at the kill fail (or, if retried, are acknowledged later); either way every report arrives.
            producer.Flush(TimeSpan.FromSeconds(15));
        }
        Assert.Empty(conflicts);
    }

    /// <summary>Reads the whole partition: offsets 0..HW-1 each exactly once, and every acknowledged record at its offset.</summary>
    private static void VerifyLog(string bootstrap, ConcurrentDictionary<long, string> acked)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "unused-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = true,
        }).Build();
        var partition = new TopicPartition(Topic, 0);
        var highWatermark = consumer.QueryWatermarkOffsets(partition, TimeSpan.FromSeconds(15)).High.Value;
        Assert.True(highWatermark >= acked.Count, $"high watermark {highWatermark} is below the {acked.Count} acknowledged records");
        Assert.True(acked.IsEmpty || acked.Keys.Max() < highWatermark, "an acknowledged offset is beyond the high watermark");

        consumer.Assign(new TopicPartitionOffset(partition, Offset.Beginning));
        var next = 0L;
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && next < highWatermark; r = next < highWatermark ? consumer.Consume(TimeSpan.FromMilliseconds(200)) : null)
            {
                if (r.IsPartitionEOF) continue;
                Assert.Equal(next, r.Offset.Value);
                if (acked.TryGetValue(r.Offset.Value, out var expected))
                    Assert.Equal(expected, Encoding.UTF8.GetString(r.Message.Value!));
                next++;
            }
            return next == highWatermark;
        }, TimeSpan.FromSeconds(60), $"every record up to the high watermark {highWatermark}", () => $"read up to {next}");
    }

    /// <summary>
    /// A free loopback port below the kernel's ephemeral range. A killed broker's port must stay unused until its
    /// successor binds it: the producer keeps retrying it, and another test's broker that took it with bind(0) would
    /// acknowledge the retries into an empty log of its own. Ports outside the ephemeral range are never handed out
    /// by bind(0) or to outgoing connections.
    /// </summary>
    internal static int FreePort()
    {
        var ephemeralLow = 32768;
        if (File.Exists("/proc/sys/net/ipv4/ip_local_port_range")
            && int.TryParse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], out var low))
            ephemeralLow = low;
        var lowest = Math.Min(10_000, ephemeralLow / 2);
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(lowest, ephemeralLow);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException($"no free loopback port in {lowest}..{ephemeralLow - 1}");
    }

    /// <summary>The CLI's build output next to ours (same configuration); built once if it is not there yet.</summary>
    internal static async Task<string> LocateCliAsync()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tributary.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        // Our own output is tests/Tributary.Broker.Tests/bin/<Configuration>/<tfm>/.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = tfmDir.Parent!.Name;
        // TRIBUTARY_CLI points at another build (e.g. the previous commit's, to measure an attack before a fix).
        if (Environment.GetEnvironmentVariable("TRIBUTARY_CLI") is { Length: > 0 } other && File.Exists(other)) return other;
        var cli = Path.Combine(dir.FullName, "src", "Tributary.Cli", "bin", configuration, tfmDir.Name, "tributary.dll");
        if (File.Exists(cli)) return cli;

        using var build = Process.Start(new ProcessStartInfo(DotnetHost(), ["build", Path.Combine(dir.FullName, "src", "Tributary.Cli"), "-c", configuration])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = build.StandardOutput.ReadToEndAsync();
        var stderr = build.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await build.WaitForExitAsync(timeout.Token);
        Assert.True(build.ExitCode == 0 && File.Exists(cli), $"building the CLI failed:\n{await stdout}\n{await stderr}");
        return cli;
    }

    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>A `tributary serve` child process; its output goes to the test log.</summary>
    internal sealed class ServeProcess : IDisposable
    {
        private readonly Process _process;

        private ServeProcess(Process process) => _process = process;

        /// <summary>Every line the process wrote so far, stdout and stderr.</summary>
        public IReadOnlyCollection<string> Lines => _lines;
        private readonly ConcurrentQueue<string> _lines = new();

        /// <summary>The broker's process id (prlimit execs the broker in place, so the same process).</summary>
        public int Pid => _process.Id;

        public bool HasExited => _process.HasExited;

        /// <param name="settings">Broker settings, each passed as <c>--set name=value</c>.</param>
        /// <param name="openFileLimit">When set, the child runs under `prlimit --nofile=N:N` (a lowered `ulimit -n`).</param>
        public static async Task<ServeProcess> StartAsync(string cli, string dataDir, int port, ITestOutputHelper output,
            IReadOnlyDictionary<string, string>? settings = null, int? openFileLimit = null)
        {
            List<string> args = [cli, "serve", "--data-dir", dataDir, "--listen", $"127.0.0.1:{port}"];
            // An ephemeral registry port unless the test names one, so children never contend for 8081.
            var all = new Dictionary<string, string> { [TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0" };
            foreach (var (name, value) in settings ?? new Dictionary<string, string>()) all[name] = value;
            foreach (var (name, value) in all) args.AddRange(["--set", $"{name}={value}"]);
            var info = openFileLimit is { } limit
                ? new ProcessStartInfo("prlimit", [$"--nofile={limit}:{limit}", DotnetHost(), .. args])
                : new ProcessStartInfo(DotnetHost(), args);
            info.RedirectStandardOutput = true;
            info.RedirectStandardError = true;
            var process = Process.Start(info)!;
            var serve = new ServeProcess(process);
            process.OutputDataReceived += (_, e) => serve.OnLine(output, e.Data);
            process.ErrorDataReceived += (_, e) => serve.OnLine(output, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await WaitForPortAsync(process, port);
            }
            catch
            {
                serve.Dispose();
                throw;
            }
            return serve;
        }

        private void OnLine(ITestOutputHelper output, string? line)
        {
            if (line is null) return;
            _lines.Enqueue(line);
            try
            {
                output.WriteLine("serve: " + line);
            }
            catch (InvalidOperationException)
            {
                // The test has finished; late output of a dying process has nowhere to go.
            }
        }

        /// <summary>Connects until the listener answers; bounded, with a short pause between attempts.</summary>
        private static async Task WaitForPortAsync(Process process, int port)
        {
            for (var attempt = 0; attempt < 300; attempt++)
            {
                Assert.False(process.HasExited, $"tributary serve exited with code {(process.HasExited ? process.ExitCode : 0)} before listening");
                using var client = new TcpClient();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                try
                {
                    await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
                    return;
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    await Task.Delay(100);
                }
            }
            Assert.Fail($"tributary serve did not listen on port {port} within 30 s");
        }

        /// <summary>SIGKILL: no shutdown hook runs, nothing is flushed that was not already.</summary>
        public void Kill()
        {
            _process.Kill(entireProcessTree: true);
            Assert.True(_process.WaitForExit(15_000), "the killed broker did not exit");
        }

        public void Dispose()
        {
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }
    }
}
