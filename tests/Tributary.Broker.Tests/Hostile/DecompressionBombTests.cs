using System.Diagnostics;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Records;
using Xunit.Abstractions;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Decompression bombs: a zstd batch of 4 records of 1 GiB of zeros (128 KiB of run-length blocks, 131 KB in all)
/// and gzip batches of 200 MB and 900 MB of zeros (about 200 KB and 900 KB). Decompression stops at the bound, 64 x max.message.bytes
/// (64 MiB by default), the produce is refused with MESSAGE_TOO_LARGE, nothing is stored, and the memory it costs
/// is a pooled window, not the expanded size.
/// </summary>
public sealed class DecompressionBombTests(BrokerFixture broker, ITestOutputHelper output) : IClassFixture<BrokerFixture>
{
    private const int DefaultMaxMessageBytes = 1048588;
    private static readonly Lazy<byte[]> ZstdBomb = new(() => HostileBatches.Batch(HostileBatches.ZstdBomb(4, 1 << 30), 4, CompressionCodec.Zstd));
    private static readonly Lazy<byte[]> GzipBomb = new(() => HostileBatches.Batch(HostileBatches.GzipBomb(4, 50_000_000), 4, CompressionCodec.Gzip));
    private static readonly Lazy<byte[]> BigGzipBomb = new(() => HostileBatches.Batch(HostileBatches.GzipBomb(4, 225_000_000), 4, CompressionCodec.Gzip));

    public static TheoryData<string> Bombs => new() { "zstd", "gzip" };

    private static byte[] Bomb(string name) => name == "zstd" ? ZstdBomb.Value : GzipBomb.Value;

    [Theory]
    [MemberData(nameof(Bombs))]
    public void Validating_a_bomb_stops_at_the_bound_and_allocates_almost_nothing(string name)
    {
        var bomb = Bomb(name);
        Assert.InRange(bomb.Length, 1, DefaultMaxMessageBytes);
        RecordBatchValidator.Validate(bomb, DefaultMaxMessageBytes, out _); // warm the pool and the decoders' types

        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var error = RecordBatchValidator.Validate(bomb, DefaultMaxMessageBytes, out _, out var message);
        clock.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        output.WriteLine($"{name}: {bomb.Length} bytes, refused in {clock.ElapsedMilliseconds} ms, {allocated} bytes allocated: {message}");
        Assert.Equal(RecordsError.MessageTooLarge, error);
        Assert.True(allocated < 256 << 10, $"validating the {name} bomb allocated {allocated} bytes");
    }

    [Theory]
    [MemberData(nameof(Bombs))]
    public void Readers_of_stored_batches_stop_at_the_bound(string name)
    {
        var bomb = Bomb(name);
        int bound = CompressionCodecs.MaxDecompressedBytes(DefaultMaxMessageBytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<DecompressionLimitException>(() => RecordReader.TryFindFirstAtOrAfter(bomb, 0, 0, bound, out _, out _));
        Assert.Throws<DecompressionLimitException>(() => RecordReader.ReadAll(bomb));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        output.WriteLine($"{name}: two reads refused after {allocated} bytes allocated (bound {bound})");
        Assert.True(allocated < 6L * bound, $"reading the {name} bomb allocated {allocated} bytes");
    }

    [Fact]
    public void A_snappy_block_claiming_more_than_it_can_hold_takes_no_memory()
    {
        byte[] claim = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x01, 0x02]; // varint 1 GiB, then a few bytes
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<DecompressionLimitException>(() => CompressionCodecs.Decompress(CompressionCodec.Snappy, claim));
        var error = RecordBatchValidator.Validate(HostileBatches.Batch(claim, 1, CompressionCodec.Snappy), DefaultMaxMessageBytes, out _);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(RecordsError.MessageTooLarge, error);
        Assert.True(allocated < 64 << 10, $"{allocated} bytes allocated");
    }

    [Theory]
    [MemberData(nameof(Bombs))]
    public async Task A_bomb_produced_to_the_broker_is_MESSAGE_TOO_LARGE_and_not_stored(string name)
    {
        var plain = await CreateTopicAsync(broker.Bootstrap, "bomb-" + name, compacted: false);
        var compacted = await CreateTopicAsync(broker.Bootstrap, "bomb-compacted-" + name, compacted: true);
        await using (var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap))
        {
            Assert.Equal((short)KafkaErrorCode.MessageTooLarge, await RecordValidationTests.ProduceRawAsync(raw, plain, Bomb(name)));
            Assert.Equal((short)KafkaErrorCode.MessageTooLarge, await RecordValidationTests.ProduceRawAsync(raw, compacted, Bomb(name)));
        }

        using var consumer = broker.Consumer();
        Assert.Equal(0, consumer.QueryWatermarkOffsets(new TopicPartition(plain, 0), TimeSpan.FromSeconds(10)).High.Value);
        Assert.Equal(0, consumer.QueryWatermarkOffsets(new TopicPartition(compacted, 0), TimeSpan.FromSeconds(10)).High.Value);
    }

    /// <summary>
    /// The attack on a real `tributary serve` (GC heap capped at 1 GiB, as one would run an unfixed broker): both bombs
    /// produced to a plain and to a compacted topic, then a timestamp lookup on each. The broker must stay up and
    /// answer a normal client, with a peak RSS under 400 MB and under 10 s of CPU for the whole attack.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public async Task A_serve_process_under_bombs_stays_up_within_its_memory_bound()
    {
        var zstd = ZstdBomb.Value;
        var gzip = BigGzipBomb.Value;
        using var serve = await ServeProcess.StartAsync(output, gcHeapHardLimit: 1L << 30);
        var bootstrap = serve.Bootstrap;
        var topics = new[] { await CreateTopicAsync(bootstrap, "bombs", false), await CreateTopicAsync(bootstrap, "bombs-compacted", true) };
        var before = Usage.Of(serve.Pid);
        var clock = Stopwatch.StartNew();
        var answers = new List<string>();
        using var sampling = new CancellationTokenSource();
        var sampler = SampleAsync(serve.Pid, sampling.Token); // the last sample survives a broker that dies
        try
        {
            await using (var raw = await RawKafkaClient.ConnectAsync(bootstrap))
            {
                foreach (var topic in topics)
                {
                    answers.Add("produce " + await RecordValidationTests.ProduceRawAsync(raw, topic, zstd));
                    answers.Add("produce " + await RecordValidationTests.ProduceRawAsync(raw, topic, gzip));
                }
            }

            using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "unused" }).Build();
            foreach (var topic in topics)
            {
                var found = consumer.OffsetsForTimes([new TopicPartitionTimestamp(topic, 0, new Timestamp(0, TimestampType.CreateTime))], TimeSpan.FromSeconds(60));
                answers.Add("lookup " + found.Single().Offset);
            }
        }
        catch (Exception e) when (e is KafkaException or SocketException or IOException or OperationCanceledException)
        {
            answers.Add(e.GetType().Name + ": " + e.Message);
        }

        sampling.Cancel();
        var after = await sampler;
        output.WriteLine($"{string.Join("; ", answers)}; serve {(serve.HasExited ? "DIED" : "up")}; RSS before {before.Rss >> 20} MB, " +
            $"peak {after.Peak >> 20} MB; CPU {after.CpuSeconds - before.CpuSeconds:F2} s in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.False(serve.HasExited, "tributary serve died under the bombs");
        Assert.Equal(4, answers.Count(a => a == "produce " + (short)KafkaErrorCode.MessageTooLarge));
        await AssertServesAsync(bootstrap);
        Assert.True(after.Peak < 400L << 20, $"peak RSS {after.Peak >> 20} MB");
        Assert.True(after.CpuSeconds - before.CpuSeconds < 10, $"{after.CpuSeconds - before.CpuSeconds:F1} s of CPU");
    }

    private static async Task AssertServesAsync(string bootstrap)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = bootstrap, MessageTimeoutMs = 10_000 }).Build();
        var delivered = await producer.ProduceAsync("after-bombs", new Message<byte[]?, byte[]?> { Value = [42] });
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "unused" }).Build();
        consumer.Assign(delivered.TopicPartitionOffset);
        var read = consumer.Consume(TimeSpan.FromSeconds(10));
        Assert.Equal([42], read?.Message.Value);
    }

    private static async Task<string> CreateTopicAsync(string bootstrap, string prefix, bool compacted)
    {
        var name = prefix + "-" + Guid.NewGuid().ToString("N")[..6];
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = name,
            NumPartitions = 1,
            ReplicationFactor = 1,
            Configs = compacted ? new Dictionary<string, string> { ["cleanup.policy"] = "compact" } : null,
        }]);
        return name;
    }

    /// <summary>Samples the process every 20 ms until cancelled or it exits; returns the last sample.</summary>
    private static async Task<Usage> SampleAsync(int pid, CancellationToken token)
    {
        var last = Usage.Of(pid);
        while (!token.IsCancellationRequested)
        {
            try
            {
                last = Usage.Of(pid);
                await Task.Delay(20, token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                break; // exited (its /proc entry is gone), or done
            }
        }

        return last;
    }

    /// <summary>Resident set size now and at its peak (VmRSS, VmHWM), and user + system CPU seconds so far.</summary>
    private readonly record struct Usage(long Rss, long Peak, double CpuSeconds)
    {
        public static Usage Of(int pid)
        {
            long rss = 0, peak = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kilobytes(line) << 10;
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line) << 10;
            }

            // /proc/PID/stat fields 14 and 15 (utime, stime), in clock ticks of 1/100 s, after the command name.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return new Usage(rss, peak, (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0);
        }

        private static long Kilobytes(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    }
}
