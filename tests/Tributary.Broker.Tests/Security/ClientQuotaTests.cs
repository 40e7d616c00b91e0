using System.Diagnostics;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Server;
using WireError = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// Client quotas (KIP-546 APIs, KIP-219 throttling): AlterClientQuotas / DescribeClientQuotas with Kafka's checks and
/// filters, kept across a restart; a producer over its byte rate is slowed to it while another client is not.
/// </summary>
public sealed class ClientQuotaTests
{
    private static AlterClientQuotasRequest.EntryData Entry(string? user, string? client, params (string Key, double? Value)[] ops)
    {
        var entry = new AlterClientQuotasRequest.EntryData();
        if (user is not null) entry.Entity.Add(new() { EntityType = "user", EntityName = user == "<default>" ? null : user });
        if (client is not null) entry.Entity.Add(new() { EntityType = "client-id", EntityName = client == "<default>" ? null : client });
        foreach (var (key, value) in ops) entry.Ops.Add(new() { Key = key, Value = value ?? 0, Remove = value is null });
        return entry;
    }

    [Fact]
    public async Task Quotas_are_altered_and_described_with_kafkas_checks_and_filters_and_survive_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-quotas-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var broker = await TributaryServer.StartEphemeralAsync(dataDir))
            {
                await using var client = await RawKafkaClient.ConnectAsync(broker.BootstrapServers.Replace("localhost", "127.0.0.1"));
                var altered = await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest
                {
                    Entries =
                    [
                        Entry("alice", null, ("producer_byte_rate", 1024)),
                        Entry("alice", "app", ("consumer_byte_rate", 2048), ("request_percentage", 50)),
                        Entry(null, "<default>", ("producer_byte_rate", 4096)),
                        Entry("bob", null, ("no_such_quota", 1)),
                        Entry("carol", null, ("producer_byte_rate", -5)),
                        Entry("dave", null, ("producer_byte_rate", 1)),
                    ],
                }, 1);
                Assert.Equal([0, 0, 0, (short)WireError.InvalidRequest, (short)WireError.InvalidRequest, 0], altered.Entries.Select(e => e.ErrorCode));
                // Removing dave's only quota removes the entity.
                await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [Entry("dave", null, ("producer_byte_rate", null))] }, 1);

                async Task<List<string>> DescribeAsync(bool strict, params (string Type, sbyte Match, string? Name)[] filter)
                {
                    var described = await client.SendAsync<DescribeClientQuotasResponse>(new DescribeClientQuotasRequest
                    {
                        Strict = strict,
                        Components = [.. filter.Select(f => new DescribeClientQuotasRequest.ComponentData { EntityType = f.Type, MatchType = f.Match, Match = f.Name })],
                    }, 1);
                    Assert.Equal(0, described.ErrorCode);
                    return [.. described.Entries!.Select(e => string.Join(",", e.Entity.Select(x => $"{x.EntityType}={x.EntityName ?? "<default>"}"))
                        + ":" + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}")))];
                }
                Assert.Equal(["client-id=<default>:producer_byte_rate=4096", "user=alice,client-id=app:consumer_byte_rate=2048,request_percentage=50",
                    "user=alice:producer_byte_rate=1024"], (await DescribeAsync(false)).Order());
                Assert.Equal(["user=alice,client-id=app:consumer_byte_rate=2048,request_percentage=50", "user=alice:producer_byte_rate=1024"],
                    (await DescribeAsync(false, ("user", 0, "alice"))).Order());
                Assert.Equal(["user=alice:producer_byte_rate=1024"], await DescribeAsync(true, ("user", 0, "alice")));
                Assert.Equal(["client-id=<default>:producer_byte_rate=4096"], await DescribeAsync(false, ("client-id", 1, null)));
                Assert.Equal(["user=alice,client-id=app:consumer_byte_rate=2048,request_percentage=50"], await DescribeAsync(false, ("client-id", 2, null)));
            }
            await using var restarted = await TributaryServer.StartEphemeralAsync(dataDir);
            Assert.Equal(3, restarted.State.Topics.Image.ClientQuotas.Count);
            Assert.Equal(1024, restarted.State.Quotas.QuotaFor("producer_byte_rate", "User:alice", "other"));
            Assert.Equal(4096, restarted.State.Quotas.QuotaFor("producer_byte_rate", "User:ANONYMOUS", "any-client"));
            Assert.Null(restarted.State.Quotas.QuotaFor("consumer_byte_rate", "User:ANONYMOUS", "any-client"));
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

    [Fact]
    [Trait("Category", "Slow")]
    public async Task A_producer_over_its_byte_rate_is_slowed_to_it_and_another_client_is_not()
    {
        const double Quota = 256 * 1024;
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["quota.window.num"] = "2",
            ["log.flush.policy"] = "page-cache",
        });
        await using (var client = await RawKafkaClient.ConnectAsync(broker.BootstrapServers.Replace("localhost", "127.0.0.1")))
        {
            var set = await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [Entry(null, "greedy", ("producer_byte_rate", Quota))] }, 1);
            Assert.Equal(0, set.Entries[0].ErrorCode);
        }
        var value = new byte[1024];
        var acknowledged = new List<(TimeSpan At, int Bytes)>();
        var clock = Stopwatch.StartNew();
        var failures = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var greedy = Task.Run(() =>
        {
            using var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig
            {
                BootstrapServers = broker.BootstrapServers,
                ClientId = "greedy",
                LingerMs = 5,
                BatchSize = 64 * 1024,
                QueueBufferingMaxKbytes = 1024,
            }).Build();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    producer.Produce("quota-greedy", new Message<Null, byte[]> { Value = value }, report =>
                    {
                        if (report.Error.IsError)
                        {
                            Interlocked.Increment(ref failures);
                            return;
                        }
                        lock (acknowledged) acknowledged.Add((clock.Elapsed, value.Length));
                    });
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == Confluent.Kafka.ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
            producer.Flush(TimeSpan.FromSeconds(30));
        });
        // Meanwhile an unthrottled client produces one record at a time and times each.
        var latencies = new List<double>();
        using (var modest = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, ClientId = "modest", LingerMs = 0 }).Build())
        {
            while (!stop.IsCancellationRequested)
            {
                var sent = Stopwatch.StartNew();
                await modest.ProduceAsync("quota-modest", new Message<Null, byte[]> { Value = value });
                latencies.Add(sent.Elapsed.TotalMilliseconds);
            }
        }
        await greedy;
        // After the initial burst (quota.window.num × 1 s of quota, and what was in flight then): the rate from 5 s to 20 s.
        double bytes;
        lock (acknowledged) bytes = acknowledged.Where(a => a.At >= TimeSpan.FromSeconds(5) && a.At < TimeSpan.FromSeconds(20)).Sum(a => (double)a.Bytes);
        var rate = bytes / 15;
        latencies.Sort();
        var p50 = latencies[latencies.Count / 2];
        var p99 = latencies[(int)(latencies.Count * 0.99)];
        Console.WriteLine($"greedy: {acknowledged.Count} acknowledged (first at {acknowledged.FirstOrDefault().At}, last at {acknowledged.LastOrDefault().At}), {failures} failed");
        Console.WriteLine($"quota {Quota / 1024:F0} KiB/s: greedy producer measured {rate / 1024:F1} KiB/s ({rate / Quota:P1} of quota); " +
            $"unthrottled producer p50 {p50:F2} ms, p99 {p99:F2} ms over {latencies.Count} sends");
        Assert.InRange(rate, Quota * 0.85, Quota * 1.15);
        Assert.True(p99 < 250, $"the unthrottled client waited: p99 {p99:F1} ms");
    }
}
