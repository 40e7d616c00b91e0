using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker;
using Tributary.Protocol.Messages;

namespace Tributary.Fuzz;

/// <summary>
/// Seeds the fuzz corpus with what real clients send. Starts an in-process broker that advertises a recording proxy
/// in front of it, so every connection a client opens goes through the proxy; the proxy saves each request frame
/// (without its size) as <c>{Api}-v{version}-{hash}.bin</c>. A scripted Confluent.Kafka session covers the admin
/// APIs, produce with every codec, fetch and list offsets; kcat (older librdkafka, other versions) runs too if it is
/// installed. Frames above 32 KiB are skipped and at most <see cref="PerApiVersion"/> are kept per API version, to
/// keep the committed corpus small.
/// </summary>
public static class CaptureSession
{
    private const int MaxFrame = 32 * 1024;
    private const int PerApiVersion = 10;

    public static async Task RunAsync(string corpusDir)
    {
        UseBundledLibrdkafka();
        Directory.CreateDirectory(corpusDir);
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-capture-" + Guid.NewGuid().ToString("N"));
        var proxy = new TcpListener(IPAddress.Loopback, 0);
        proxy.Start();
        var proxyPort = ((IPEndPoint)proxy.LocalEndpoint).Port;
        var config = new BrokerConfig { DataDir = dataDir, ListenHost = "127.0.0.1", ListenPort = 0, AdvertisedHost = "127.0.0.1", AdvertisedPort = proxyPort };
        await using var server = await TributaryServer.StartAsync(config);
        using var stop = new CancellationTokenSource();
        var recorder = new FrameRecorder(corpusDir);
        var accepting = AcceptLoopAsync(proxy, server.Port, recorder, stop.Token);
        var bootstrap = $"127.0.0.1:{proxyPort}";
        try
        {
            await RunConfluentScriptAsync(bootstrap);
            await RunKcatAsync(bootstrap);
        }
        finally
        {
            await stop.CancelAsync();
            proxy.Stop();
            await accepting;
            Directory.Delete(dataDir, recursive: true);
        }
        Console.WriteLine($"saved {recorder.Saved} request frames to {corpusDir}");
    }

    private static void UseBundledLibrdkafka()
    {
        // Debian lacks the libsasl2.so.3 the default build needs (see shared/ENVIRONMENT.md). Not a module initializer:
        // a test assembly that references this one sets the same resolver, and a second registration throws.
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, (name, _, _) =>
                name == "librdkafka" ? NativeLibrary.Load(Path.Combine(AppContext.BaseDirectory, "runtimes/linux-x64/native/centos8-librdkafka.so")) : IntPtr.Zero);
        }
        catch (InvalidOperationException)
        {
        }
    }

    private static async Task RunConfluentScriptAsync(string bootstrap)
    {
        const string topic = "capture";
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([
                new TopicSpecification { Name = topic, NumPartitions = 2, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "3600000" } },
                new TopicSpecification { Name = "capture-doomed", NumPartitions = 1, ReplicationFactor = 1 },
            ]);
            await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = topic }, new ConfigResource { Type = ResourceType.Broker, Name = "1" }]);
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [new ConfigResource { Type = ResourceType.Topic, Name = topic }] = [new ConfigEntry { Name = "segment.bytes", Value = "104857600", IncrementalOperation = AlterConfigOpType.Set }],
            });
            await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = 3 }]);
            await admin.DescribeClusterAsync();
            await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]));
            admin.GetMetadata(TimeSpan.FromSeconds(10));
        }

        foreach (var codec in new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd })
        {
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                CompressionType = codec,
                LingerMs = 20,
                EnableIdempotence = false, // InitProducerId is not served yet
            }).Build();
            for (var i = 0; i < 5; i++)
            {
                producer.Produce(topic, new Message<string, string>
                {
                    Key = $"key-{i}",
                    Value = $"{codec} value {i} " + new string('x', i * 10),
                    Headers = i % 2 == 0 ? [new Header("h", [1, 2, 3])] : null,
                });
            }
            producer.Flush(TimeSpan.FromSeconds(10));
        }

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "capture",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = true,
        }).Build())
        {
            var partitions = Enumerable.Range(0, 3).Select(p => new TopicPartition(topic, p)).ToList();
            foreach (var tp in partitions) consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
            consumer.OffsetsForTimes(partitions.Select(tp => new TopicPartitionTimestamp(tp, new Timestamp(DateTime.UtcNow.AddHours(-1)))), TimeSpan.FromSeconds(10));
            consumer.Assign(partitions.Select(tp => new TopicPartitionOffset(tp, Offset.Beginning)));
            var eof = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (eof < partitions.Count && DateTime.UtcNow < deadline)
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r?.IsPartitionEOF == true) eof++;
            }
        }

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
        {
            await admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, 1)]);
            await admin.DeleteTopicsAsync(["capture-doomed"]);
        }
    }

    private static async Task RunKcatAsync(string bootstrap)
    {
        if (!File.Exists("/usr/bin/kcat")) return;
        await KcatAsync(bootstrap, ["-L"], null);
        foreach (var codec in new[] { "none", "gzip", "snappy", "lz4" })
            await KcatAsync(bootstrap, ["-P", "-t", "kcat-" + codec, "-z", codec, "-K", ":", "-X", "allow.auto.create.topics=true"], $"k1:{codec} one\nk2:{codec} two\n");
        await KcatAsync(bootstrap, ["-C", "-t", "kcat-gzip", "-o", "beginning", "-e", "-q"], null);
        await KcatAsync(bootstrap, ["-Q", "-t", "kcat-gzip:0:-1"], null);
    }

    private static async Task KcatAsync(string bootstrap, string[] args, string? stdin)
    {
        var info = new ProcessStartInfo("/usr/bin/kcat", ["-b", bootstrap, .. args])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
        }
        Console.WriteLine($"kcat {string.Join(' ', args)}: exit {(process.HasExited ? process.ExitCode : -1)} {(await error).Trim()}");
        _ = await output;
    }

    private static async Task AcceptLoopAsync(TcpListener proxy, int brokerPort, FrameRecorder recorder, CancellationToken stop)
    {
        var connections = new List<Task>();
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await proxy.AcceptTcpClientAsync(stop);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                break;
            }
            connections.Add(RelayAsync(client, brokerPort, recorder, stop));
        }
        await Task.WhenAll(connections);
    }

    private static async Task RelayAsync(TcpClient client, int brokerPort, FrameRecorder recorder, CancellationToken stop)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, brokerPort, stop);
                var fromClient = client.GetStream();
                var toBroker = upstream.GetStream();
                var responses = toBroker.CopyToAsync(fromClient, stop);
                var size = new byte[4];
                while (await ReadFullyAsync(fromClient, size, stop))
                {
                    var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
                    if (!await ReadFullyAsync(fromClient, frame, stop)) break;
                    recorder.Save(frame);
                    await toBroker.WriteAsync(size, stop);
                    await toBroker.WriteAsync(frame, stop);
                }
                upstream.Client.Shutdown(SocketShutdown.Send);
                await responses;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }
    }

    private static async Task<bool> ReadFullyAsync(Stream stream, Memory<byte> buffer, CancellationToken stop)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], stop);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    private sealed class FrameRecorder(string directory)
    {
        private readonly Dictionary<(short, short), int> _counts = [];
        private readonly HashSet<string> _hashes = [];

        public int Saved { get; private set; }

        public void Save(byte[] frame)
        {
            if (frame.Length < 8 || frame.Length > MaxFrame) return;
            var apiKey = BinaryPrimitives.ReadInt16BigEndian(frame);
            var version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
            // The correlation id differs in every frame; hash without it so repeats are recognised.
            var hash = Convert.ToHexStringLower(SHA256.HashData([.. frame.AsSpan(0, 4), .. frame.AsSpan(8)]))[..12];
            lock (_counts)
            {
                var count = _counts.GetValueOrDefault((apiKey, version));
                if (count >= PerApiVersion || !_hashes.Add(hash)) return;
                _counts[(apiKey, version)] = count + 1;
                File.WriteAllBytes(Path.Combine(directory, $"{(ApiKey)apiKey}-v{version}-{hash}.bin"), frame);
                Saved++;
            }
        }
    }
}
