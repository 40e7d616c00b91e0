using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Attacks measured on a whole `tributary serve` process: a client that never reads its fetch responses, and more
/// connections than the process has descriptors. The broker stays up, within a memory bound, without spinning or
/// flooding its log, and a normal client is served during or right after the attack.
/// </summary>
[Trait("Category", "Slow")]
public sealed class ProcessAttackTests(ITestOutputHelper output)
{
    private const int FetchBytes = 32 << 20;

    [Fact]
    public async Task ClientThatNeverReadsItsFetchesPinsOneResponseBudgetNotOneResponsePerRequest()
    {
        // A hard heap limit keeps the unfixed broker (128 x 32 MiB queued = 4 GiB) from taking the machine down.
        using var broker = await ServeProcess.StartAsync(output, gcHeapHardLimit: 1L << 30);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "big", NumPartitions = 1, ReplicationFactor = 1 }]);
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = broker.Bootstrap, Acks = Acks.All }).Build())
        {
            var value = new byte[900_000];
            for (var i = 0; i < 45; i++) producer.Produce("big", new Message<byte[]?, byte[]?> { Value = value });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        var baseline = broker.RssBytes();

        await using var attacker = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var fetch = new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 1,
            MaxBytes = FetchBytes,
            Topics = [new FetchRequest.FetchTopic { Topic = "big", Partitions = [new FetchRequest.FetchPartition { FetchOffset = 0, PartitionMaxBytes = FetchBytes }] }],
        };
        var frame = RawKafkaClient.Body(fetch, 4);
        for (var i = 0; i < 128; i++) await attacker.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.Fetch, 4, attacker.NextCorrelationId(), frame));

        // Memory is sampled while a normal client produces and reads back, and for three seconds at least.
        var peak = baseline;
        var window = Stopwatch.StartNew();
        var roundTrip = NormalClient.RoundTripAsync(broker.Bootstrap);
        while (!roundTrip.IsCompleted || window.Elapsed < TimeSpan.FromSeconds(3))
        {
            Assert.False(broker.HasExited, "the broker died under the attack");
            peak = Math.Max(peak, broker.RssBytes());
            await Task.WhenAny(roundTrip, Task.Delay(100));
        }
        await roundTrip;
        output.WriteLine($"RSS baseline {baseline >> 20} MiB, peak {peak >> 20} MiB during the attack");
        Assert.True(peak - baseline < 400L << 20, $"RSS grew by {(peak - baseline) >> 20} MiB under one never-reading client");
    }

    [Fact]
    public async Task OutOfDescriptorsTheListenerBacksOffQuietlyAndRecoversWhenConnectionsClose()
    {
        // max.connections raised past the descriptors, so accept itself runs out (the default stops short of that).
        using var broker = await ServeProcess.StartAsync(output, new Dictionary<string, string> { ["max.connections"] = "100000" }, openFileLimit: OpenFileLimitCheck.Minimum);
        var idle = new List<Socket>();
        try
        {
            await OpenIdleConnectionsAsync(broker.Bootstrap, 800, idle);
            await Eventually.TrueAsync(() =>
            {
                Assert.False(broker.HasExited, "the broker died when it ran out of descriptors");
                return broker.Lines.Any(l => l.Contains("accept failed", StringComparison.Ordinal));
            }, TimeSpan.FromSeconds(30), "the broker to run out of descriptors (an \"accept failed\" line)");

            // A three-second window: a spinning accept loop burns a core and writes thousands of lines in it.
            var cpuBefore = broker.CpuTime();
            var linesBefore = broker.Lines.Count;
            await Task.Delay(TimeSpan.FromSeconds(3));
            var cpu = broker.CpuTime() - cpuBefore;
            var lines = broker.Lines.Count - linesBefore;
            output.WriteLine($"out of descriptors for 3 s: {cpu.TotalSeconds:F2} s CPU, {lines} log lines");
            Assert.False(broker.HasExited, "the broker died while out of descriptors");
            Assert.True(cpu < TimeSpan.FromSeconds(1), $"{cpu.TotalSeconds:F2} s of CPU in 3 s while out of descriptors");
            Assert.True(lines <= 12, $"{lines} log lines in 3 s while out of descriptors");
        }
        finally
        {
            foreach (var socket in idle) socket.Dispose();
        }
        await NormalClient.RoundTripAsync(broker.Bootstrap);
        Assert.False(broker.HasExited);
    }

    [Fact]
    public async Task IdleConnectionsStopAtTheDefaultMaxConnectionsAndLeaveDescriptorsForTheLogs()
    {
        // ulimit -n 512: 384 for the runtime, 64 for segment files, so max.connections defaults to 64.
        using var broker = await ServeProcess.StartAsync(output, openFileLimit: OpenFileLimitCheck.Minimum);
        await using var client = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var idle = new List<Socket>();
        try
        {
            await OpenIdleConnectionsAsync(broker.Bootstrap, 800, idle);

            // The connection made before the flood creates topics (three segment files each) and writes to them.
            for (var t = 0; t < 20; t++)
            {
                var topic = $"after-flood-{t}";
                var created = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }] }, 5);
                Assert.Equal(0, Assert.Single(created.Topics).ErrorCode);
                var batch = new Tributary.Protocol.Records.RecordBatchBuilder().Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, "x"u8.ToArray()).Build();
                var produced = await client.SendAsync<ProduceResponse>(new ProduceRequest { Acks = -1, TimeoutMs = 10_000, TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }] }, 7);
                Assert.Equal(0, Assert.Single(Assert.Single(produced.Responses).PartitionResponses).ErrorCode);
            }
            Assert.DoesNotContain(broker.Lines, l => l.Contains("accept failed", StringComparison.Ordinal));
            Assert.False(broker.HasExited);
        }
        finally
        {
            foreach (var socket in idle) socket.Dispose();
        }
        await NormalClient.RoundTripAsync(broker.Bootstrap);
    }

    /// <summary>
    /// Opens <paramref name="count"/> connections that never send, into <paramref name="sockets"/> (the caller disposes
    /// them). The kernel completes these handshakes in the listen backlog whether or not the broker can accept them.
    /// </summary>
    private static async Task OpenIdleConnectionsAsync(string bootstrap, int count, List<Socket> sockets)
    {
        var endpoint = new IPEndPoint(IPAddress.Loopback, int.Parse(bootstrap.Split(':')[1]));
        for (var i = 0; i < count; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sockets.Add(socket);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(endpoint, timeout.Token);
        }
    }
}
