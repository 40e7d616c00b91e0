using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Server;
using WireError = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// Client quotas (KIP-546 APIs, KIP-219 throttling): AlterClientQuotas / DescribeClientQuotas with Kafka's checks and
/// filters, kept across a restart; a producer over its byte rate is slowed to it while another client is not; a fetch
/// over the consumer byte rate is answered empty; ip quotas (KIP-612) pace connections per address.
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
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(35));
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
        // After the initial burst (quota.window.num × 1 s of quota, and what was in flight then): the rate over the 30 s
        // from 5 s to 35 s.
        double bytes;
        lock (acknowledged) bytes = acknowledged.Where(a => a.At >= TimeSpan.FromSeconds(5) && a.At < TimeSpan.FromSeconds(35)).Sum(a => (double)a.Bytes);
        var rate = bytes / 30;
        latencies.Sort();
        var p50 = latencies[latencies.Count / 2];
        var p99 = latencies[(int)(latencies.Count * 0.99)];
        Console.WriteLine($"greedy: {acknowledged.Count} acknowledged (first at {acknowledged.FirstOrDefault().At}, last at {acknowledged.LastOrDefault().At}), {failures} failed");
        Console.WriteLine($"quota {Quota / 1024:F0} KiB/s: greedy producer measured {rate / 1024:F1} KiB/s ({rate / Quota:P1} of quota); " +
            $"unthrottled producer p50 {p50:F2} ms, p99 {p99:F2} ms over {latencies.Count} sends");
        Assert.InRange(rate, Quota * 0.9, Quota * 1.1);
        Assert.True(p99 < 250, $"the unthrottled client waited: p99 {p99:F1} ms");
    }

    private static AlterClientQuotasRequest.EntryData IpEntry(string? ip, string key, double value, string? user = null)
    {
        var entry = new AlterClientQuotasRequest.EntryData { Entity = [new() { EntityType = "ip", EntityName = ip }] };
        if (user is not null) entry.Entity.Add(new() { EntityType = "user", EntityName = user });
        entry.Ops.Add(new() { Key = key, Value = value });
        return entry;
    }

    [Fact]
    public async Task Ip_quotas_are_checked_as_kafka_checks_them_and_pace_connections_from_their_address_only()
    {
        // One window of one second: a rate of 1 lets an address open one connection, then one a second.
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["quota.window.num"] = "1" });
        var bootstrap = broker.BootstrapServers.Replace("localhost", "127.0.0.1");
        await using var admin = await RawKafkaClient.ConnectAsync(bootstrap);
        var altered = await admin.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest
        {
            Entries =
            [
                IpEntry("127.0.0.2", "connection_creation_rate", 1),
                IpEntry("no-such-host.invalid", "connection_creation_rate", 1),
                IpEntry("127.0.0.4", "connection_creation_rate", 1, user: "alice"),
                IpEntry("127.0.0.4", "producer_byte_rate", 1),
                IpEntry(null, "connection_creation_rate", 1.5),
            ],
        }, 1);
        Assert.Equal([null, "no-such-host.invalid is not a valid IP or resolvable host.",
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
            "Invalid configuration key producer_byte_rate", "connection_creation_rate cannot be a fractional value."], altered.Entries.Select(e => e.ErrorMessage));
        var userRate = await admin.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest
        {
            Entries = [Entry("alice", null, ("connection_creation_rate", 1))],
        }, 1);
        Assert.Equal("Invalid configuration key connection_creation_rate", userRate.Entries[0].ErrorMessage);
        var described = await admin.SendAsync<DescribeClientQuotasResponse>(new DescribeClientQuotasRequest
        {
            Components = [new() { EntityType = "ip", MatchType = 0, Match = "127.0.0.2" }],
        }, 1);
        var entry = Assert.Single(described.Entries!);
        Assert.Equal(("ip", "127.0.0.2"), (entry.Entity.Single().EntityType, entry.Entity.Single().EntityName));
        Assert.Equal(("connection_creation_rate", 1.0), (entry.Values.Single().Key, entry.Values.Single().Value));

        // Five connections opened at once from each address: 127.0.0.2 gets its one, the rest are accepted and closed
        // unanswered; 127.0.0.3 has no quota and all five are answered.
        async Task<bool> AnsweredAsync(IPAddress from)
        {
            await using var client = await RawKafkaClient.ConnectAsync(bootstrap, from);
            await client.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.ApiVersions, 0, 1, RawKafkaClient.Body(new ApiVersionsRequest(), 0)));
            try
            {
                return await client.ReadFrameAsync() is not null;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return false; // closed with the request unread
            }
        }
        var limited = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => AnsweredAsync(IPAddress.Parse("127.0.0.2"))));
        var free = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => AnsweredAsync(IPAddress.Parse("127.0.0.3"))));
        Assert.InRange(limited.Count(a => a), 1, 4);
        Assert.All(free, Assert.True);
    }

    [Fact]
    public async Task A_fetch_over_the_consumer_byte_rate_is_answered_empty_and_its_records_come_next_time()
    {
        // One window of one second at 10,000 bytes a second: a budget of 10,000 bytes, three 4 KB batches' worth less one.
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["quota.window.num"] = "1" });
        var bootstrap = broker.BootstrapServers.Replace("localhost", "127.0.0.1");
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 0 }).Build())
            for (var i = 0; i < 4; i++)
                await producer.ProduceAsync("quota-fetch", new Message<Null, byte[]> { Value = new byte[4000] });
        await using var client = await RawKafkaClient.ConnectAsync(bootstrap);
        var set = await client.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [Entry(null, "reader", ("consumer_byte_rate", 10_000))] }, 1);
        Assert.Equal(0, set.Entries[0].ErrorCode);

        // A partition_max_bytes of 1 returns exactly the first batch at the offset.
        async Task<FetchResponse> FetchAsync(long offset, int sessionEpoch) => await client.SendAsync<FetchResponse>(new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = sessionEpoch,
            Topics = [new FetchRequest.FetchTopic { Topic = "quota-fetch", Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 }] }],
        }, 12, clientId: "reader");

        var first = await FetchAsync(0, -1);
        var second = await FetchAsync(1, -1);
        Assert.Equal((0, 0), (first.ThrottleTimeMs, second.ThrottleTimeMs));
        Assert.True(second.Responses.Single().Partitions.Single().Records!.Value.Length > 4000);
        // The third would take the budget below zero: withheld, with the time until it fits; a full request (epoch 0)
        // gets no session.
        var third = await FetchAsync(2, 0);
        Assert.True(third.ThrottleTimeMs > 0, "no throttle time");
        Assert.Empty(third.Responses);
        Assert.Equal(0, third.SessionId);
        // The connection was muted for that long; then the same fetch gets the same batch, in a new session.
        var again = await FetchAsync(2, 0);
        Assert.Equal(0, again.ThrottleTimeMs);
        Assert.NotEqual(0, again.SessionId);
        Assert.Equal(2, BinaryPrimitives.ReadInt64BigEndian(again.Responses.Single().Partitions.Single().Records!.Value.Span));
    }
}
