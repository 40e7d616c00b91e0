using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 12 #7: the figures an operator needs exist as System.Diagnostics.Metrics instruments and count real traffic
/// from real clients. The listener takes only this broker's meters, so other tests' brokers in the process don't count.
/// </summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private TributaryServer _server = null!;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Instrument, string Tags), double> _sums = new();
    private readonly ConcurrentDictionary<string, int> _recordings = new();

    public async Task InitializeAsync()
    {
        _server = await TributaryServer.StartEphemeralAsync();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, _server.State.Metrics.Meter) || ReferenceEquals(instrument.Meter, _server.StorageMetrics.Meter)
                || ReferenceEquals(instrument.Meter, _server.Groups.Runtime.Meter) || ReferenceEquals(instrument.Meter, _server.Transactions.Runtime.Meter))
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = string.Join(",", tags.ToArray().OrderBy(t => t.Key).Select(t => $"{t.Key}={t.Value}"));
        // Gauges report a level, so the last observation counts; counters and histograms add up.
        if (instrument is ObservableGauge<long> or ObservableGauge<int> or ObservableUpDownCounter<int>) _sums[(instrument.Name, key)] = value;
        else _sums.AddOrUpdate((instrument.Name, key), value, (_, sum) => sum + value);
        _recordings.AddOrUpdate(instrument.Name, 1, (_, n) => n + 1);
    }

    private double Sum(string instrument, string tags = "") => _sums.GetValueOrDefault((instrument, tags));

    private double SumAll(string instrument) => _sums.Where(e => e.Key.Instrument == instrument).Sum(e => e.Value);

    public async Task DisposeAsync()
    {
        _listener.Dispose();
        await _server.StopAsync();
    }

    [Fact]
    public async Task The_coordinators_report_their_shards()
    {
        await _server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
        await _server.Transactions.WaitUntilLoadedAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _listener.RecordObservableInstruments();

        Assert.Equal(_server.Groups.Runtime.Partitions.Count, Sum("tributary.coordinator.shards", "coordinator=group,state=loaded"));
        Assert.Equal(_server.Transactions.Runtime.Partitions.Count, Sum("tributary.coordinator.shards", "coordinator=transaction,state=loaded"));
        Assert.True(_server.Groups.Runtime.Partitions.Count > 0);
        Assert.Equal(0, Sum("tributary.coordinator.shards", "coordinator=group,state=failed"));
        Assert.Equal(0, Sum("tributary.coordinator.load.failures", "coordinator=group"));
    }

    [Fact]
    public async Task Real_traffic_moves_every_figure()
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _server.BootstrapServers }).Build())
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "metered", NumPartitions = 1, ReplicationFactor = 1 }]);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = _server.BootstrapServers, Acks = Acks.All, LingerMs = 5 }).Build())
        {
            for (var i = 0; i < 1000; i++) producer.Produce("metered", new Message<Null, string> { Value = "value-" + i });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        using (var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig { BootstrapServers = _server.BootstrapServers, GroupId = "metered-group", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false, FetchWaitMaxMs = 100 }).Build())
        {
            consumer.Subscribe("metered");
            var read = 0;
            while (read < 1000) if (consumer.Consume(TimeSpan.FromSeconds(30)) is { } r) { read++; if (read == 1000) consumer.Commit(r); } else break;
            Assert.Equal(1000, read);
            // At the end of the log the consumer long-polls.
            Assert.Null(consumer.Consume(TimeSpan.FromMilliseconds(500)));
            _listener.RecordObservableInstruments();
            Assert.True(Sum("tributary.connections") >= 1, "connections");
            Assert.True(Sum("tributary.groups") >= 1, "groups");
            consumer.Close();
        }
        // A batch whose CRC is wrong: CORRUPT_MESSAGE, counted by API and error.
        await using (var raw = await RawKafkaClient.ConnectAsync(_server.BootstrapServers))
        {
            var batch = new RecordBatchBuilder().Add(1, null, [1]).Build();
            batch[^1] ^= 0xFF;
            var response = await raw.SendAsync<ProduceResponse>(new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "metered", PartitionData = [new() { Index = 0, Records = batch }] }] }, 9);
            Assert.Equal((short)Tributary.Protocol.Messages.ErrorCode.CorruptMessage, response.Responses[0].PartitionResponses[0].ErrorCode);
        }
        _listener.RecordObservableInstruments();

        Assert.Equal(1000, Sum("tributary.produce.records", "topic=metered"));
        Assert.True(Sum("tributary.produce.bytes", "topic=metered") > 1000 * 7, "produce.bytes");
        Assert.True(Sum("tributary.fetch.bytes", "topic=metered") >= Sum("tributary.produce.bytes", "topic=metered"), "fetch.bytes");
        Assert.True(Sum("tributary.requests", "api=Produce") >= 1, "produce requests");
        Assert.True(Sum("tributary.requests", "api=Fetch") >= 1, "fetch requests");
        Assert.True(Sum("tributary.requests", "api=OffsetCommit") >= 1, "offset commits");
        Assert.True(_recordings.GetValueOrDefault("tributary.request.duration") >= Sum("tributary.requests", "api=Produce"), "request durations");
        Assert.True(_recordings.GetValueOrDefault("tributary.produce.wait") >= 1, "produce waits");
        Assert.True(_recordings.GetValueOrDefault("tributary.fetch.wait") >= 1, "fetch long-poll waits");
        Assert.Equal(1, Sum("tributary.request.errors", "api=Produce,error=CorruptMessage"));
        Assert.True(SumAll("tributary.log.flushes") >= 1, "flushes");
        Assert.True(_recordings.GetValueOrDefault("tributary.log.flush.duration") >= 1, "flush durations");
        Assert.True(Sum("tributary.log.size", "partition=0,topic=metered") >= Sum("tributary.produce.bytes", "topic=metered"), "log size");
        Assert.Equal(0, SumAll("tributary.cleaner.failures"));
    }
}
