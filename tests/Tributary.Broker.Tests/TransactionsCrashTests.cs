using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// Consume-transform-produce with SendOffsetsToTransaction over a 6-partition input, while a loopback proxy drops
/// client connections at random and the worker "crashes" at random points (its producer and consumer vanish without
/// ending the transaction) and restarts with the same transactional.id. The output must hold every input record
/// exactly once, in order per key. Each seed is a different run.
/// </summary>
[Trait("Category", "Slow")]
public sealed class TransactionsCrashTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Records = 240;
    private const int Keys = 12;
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-ctp-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, true)]
    public async Task EveryInputRecordIsInTheOutputExactlyOnceDespiteCrashesAndDroppedConnections(int seed, bool restartBroker)
    {
        var random = new Random(seed);
        await using var proxy = new DroppingProxy(new Random(seed * 7919));
        var config = new BrokerConfig { DataDir = _dataDir, ListenHost = "127.0.0.1", ListenPort = 0, AdvertisedHost = "127.0.0.1", AdvertisedPort = proxy.Port };
        config.Settings[TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0";
        config.Settings[TributaryServer.ConsoleListenersSetting] = "";
        var server = await TributaryServer.StartAsync(config);
        try
        {
            proxy.Target = server.Port;
            server.State.Topics.Create("ctp-in", 6, new Dictionary<string, string>());
            server.State.Topics.Create("ctp-out", 6, new Dictionary<string, string>());
            var bootstrap = $"127.0.0.1:{proxy.Port}";

            using (var input = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true }).Build())
            {
                for (var i = 0; i < Records; i++) input.Produce("ctp-in", new Message<string, string> { Key = "k" + (i % Keys), Value = $"k{i % Keys}:{i / Keys}" });
                Assert.Equal(0, input.Flush(TimeSpan.FromSeconds(60)));
            }

            proxy.StartDropping();
            // With restartBroker, the broker stops and starts again on its data directory once, mid-run, while
            // transactions are open; the proxy then forwards to its new port.
            var restart = !restartBroker ? Task.CompletedTask : Task.Run(async () =>
            {
                await Task.Delay(1000 + new Random(seed).Next(2000));
                var stopping = server;
                await stopping.StopAsync();
                server = await TributaryServer.StartAsync(config);
                proxy.Target = server.Port;
            });
            var deadline = DateTime.UtcNow.AddSeconds(120);
            var crashes = 0;
            while (!restart.IsCompleted || Committed(server) < Records)
            {
                Assert.True(DateTime.UtcNow < deadline, $"seed {seed}: only {Committed(server)} of {Records} input records committed after {crashes} crashes");
                if (!RunWorker(bootstrap, random)) crashes++;
            }
            await restart;
            proxy.StopDropping();
            output.WriteLine($"seed {seed}: {crashes} worker crashes, {proxy.Dropped} connections dropped, broker restarted: {restartBroker}");

            var values = TransactionsTests.ReadValues(server.BootstrapServers, "ctp-out", 6, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(3));
            Assert.Equal(Records, values.Count);
            Assert.Equal(Records, values.Distinct().Count());
            foreach (var key in values.GroupBy(v => v.Split(':')[0]))
            {
                var seqs = key.Select(v => int.Parse(v.Split(':')[1])).ToList();
                Assert.Equal(Enumerable.Range(0, Records / Keys), seqs);
            }
        }
        finally
        {
            await server.StopAsync();
        }
    }

    private static long Committed(TributaryServer server)
    {
        try
        {
            return server.Groups.FetchOffsetsAsync("ctp", null).GetAwaiter().GetResult().Offsets.Where(o => o.Topic == "ctp-in").Sum(o => o.Offset?.Offset ?? 0);
        }
        catch (ObjectDisposedException)
        {
            return -1; // the broker is restarting
        }
    }

    /// <summary>One worker life: returns false when it crashed (on purpose or from an error) before finishing.</summary>
    private static bool RunWorker(string bootstrap, Random random)
    {
        var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "ctp",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build();
        var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            TransactionalId = "ctp-worker",
            TransactionTimeoutMs = 20_000,
            LingerMs = 1,
            MessageTimeoutMs = 15_000,
        }).Build();
        try
        {
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            var partitions = Enumerable.Range(0, 6).Select(p => new TopicPartition("ctp-in", p)).ToList();
            var committed = consumer.Committed(partitions, TimeSpan.FromSeconds(10));
            consumer.Assign(committed.Select(c => new TopicPartitionOffset(c.TopicPartition, c.Offset == Offset.Unset ? Offset.Beginning : c.Offset)));
            var idle = 0;
            while (idle < 10)
            {
                var batch = new List<ConsumeResult<string, string>>();
                var limit = random.Next(1, 30);
                while (batch.Count < limit && consumer.Consume(TimeSpan.FromMilliseconds(batch.Count == 0 ? 300 : 20)) is { } r) batch.Add(r);
                if (batch.Count == 0)
                {
                    idle++;
                    continue;
                }
                idle = 0;
                producer.BeginTransaction();
                foreach (var r in batch) producer.Produce("ctp-out", new Message<string, string> { Key = r.Message.Key, Value = r.Message.Value });
                if (random.Next(12) == 0) return false; // crash with records written, offsets not sent
                var offsets = batch.GroupBy(r => r.TopicPartition).Select(g => new TopicPartitionOffset(g.Key, g.Max(r => r.Offset.Value) + 1)).ToList();
                producer.SendOffsetsToTransaction(offsets, consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
                if (random.Next(12) == 0) return false; // crash with offsets staged, before the commit
                producer.CommitTransaction(TimeSpan.FromSeconds(30));
                if (random.Next(20) == 0) return false; // crash right after a commit
            }
            return true;
        }
        catch (KafkaException)
        {
            return false; // a dropped connection the client could not ride out: restart, as an application would
        }
        finally
        {
            // Neither the consumer nor the producer ends anything: like a killed process, they just go away.
            producer.Dispose();
            consumer.Dispose();
        }
    }

    /// <summary>A loopback TCP proxy that, while dropping, closes a random live connection every 100-600 ms.</summary>
    private sealed class DroppingProxy : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Random _random;
        private readonly List<(Socket Client, Socket Server)> _pairs = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accepting;
        private Task? _dropping;
        private CancellationTokenSource? _dropStop;

        public DroppingProxy(Random random)
        {
            _random = random;
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _accepting = AcceptAsync();
        }

        public int Port { get; }
        public int Dropped => Volatile.Read(ref _dropped);
        private int _dropped;
        public int Target { get; set; }

        public void StartDropping()
        {
            _dropStop = new CancellationTokenSource();
            var token = _dropStop.Token;
            _dropping = Task.Run(async () =>
            {
                while (!token.IsCancellationRequested)
                {
                    int delay;
                    lock (_random) delay = _random.Next(100, 600);
                    await Task.Delay(delay).ConfigureAwait(false);
                    (Socket, Socket)? victim = null;
                    lock (_pairs)
                    {
                        if (_pairs.Count > 0)
                        {
                            int index;
                            lock (_random) index = _random.Next(_pairs.Count);
                            victim = _pairs[index];
                            _pairs.RemoveAt(index);
                        }
                    }
                    if (victim is var (a, b))
                    {
                        Interlocked.Increment(ref _dropped);
                        a.Dispose();
                        b.Dispose();
                    }
                }
            });
        }

        public void StopDropping()
        {
            _dropStop?.Cancel();
            _dropping?.Wait();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await server.ConnectAsync(IPAddress.Loopback, Target).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    client.Dispose();
                    server.Dispose();
                    continue;
                }
                client.NoDelay = true;
                lock (_pairs) _pairs.Add((client, server));
                _ = PumpAsync(client, server);
                _ = PumpAsync(server, client);
            }
        }

        private static async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var n = await from.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                    if (n == 0) break;
                    await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            from.Dispose();
            to.Dispose();
        }

        public async ValueTask DisposeAsync()
        {
            StopDropping();
            _stop.Cancel();
            _listener.Stop();
            await _accepting.ConfigureAwait(false);
            lock (_pairs)
            {
                foreach (var (a, b) in _pairs)
                {
                    a.Dispose();
                    b.Dispose();
                }
                _pairs.Clear();
            }
        }
    }
}
