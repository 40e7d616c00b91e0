using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Issue 12 #5: a topic with confluent.value.schema.validation=true never takes unvalidated bytes, whatever state the
/// registry is in: disabled or failed to start is a clear INVALID_RECORD, still starting is retried by the producer.
/// </summary>
public sealed class SchemaValidationFailsClosedTests
{
    private static async Task CreateValidatedTopicAsync(TributaryServer server, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1, Configs = new() { [RecordValidation.ValueConfig] = "true" } }]);
    }

    private static IProducer<Null, byte[]> Producer(TributaryServer server, int messageTimeoutMs = 10_000) =>
        new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = server.BootstrapServers, MessageTimeoutMs = messageTimeoutMs }).Build();

    private static long HighWatermark(TributaryServer server, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = server.BootstrapServers, GroupId = "hw" }).Build();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    /// <summary>A record in Confluent's wire format is refused with INVALID_RECORD and nothing is stored.</summary>
    private static async Task AssertEveryRecordRefusedAsync(TributaryServer server)
    {
        await CreateValidatedTopicAsync(server, "validated");
        using var producer = Producer(server);
        var e = await Assert.ThrowsAsync<ProduceException<Null, byte[]>>(() => producer.ProduceAsync("validated", new Message<Null, byte[]> { Value = [0, 0, 0, 0, 1, 42] }));
        Assert.Equal(ErrorCode.InvalidRecord, e.Error.Code);
        Assert.Equal(0, HighWatermark(server, "validated"));
    }

    [Fact]
    public async Task With_the_registry_disabled_a_validated_topic_refuses_every_record()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [TributaryServer.SchemaRegistryEnableSetting] = "false" });
        await AssertEveryRecordRefusedAsync(server);
    }

    [Fact]
    public async Task With_the_registry_failed_to_start_a_validated_topic_refuses_every_record()
    {
        // Its listener's port is taken.
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [TributaryServer.SchemaRegistryListenersSetting] = $"http://127.0.0.1:{port}" });
        Assert.Equal(SchemaRegistryStatus.Failed, server.State.SchemaRegistryStatus);
        await AssertEveryRecordRefusedAsync(server);
    }

    [Fact]
    public async Task While_the_registry_starts_a_produce_is_retried_and_validated_once_it_runs()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
        var id = await http.RegisterAsync("validated-value", "\"string\"");
        await CreateValidatedTopicAsync(server, "validated");

        // Put the broker back in the state it has between its listener opening and the registry's replay ending.
        var validator = server.State.SchemaValidator!;
        server.State.SchemaValidator = null;
        server.State.SchemaRegistryStatus = SchemaRegistryStatus.Starting;
        using var producer = Producer(server, messageTimeoutMs: 30_000);
        var pending = producer.ProduceAsync("validated", new Message<Null, byte[]> { Value = [0, (byte)(id >> 24), (byte)(id >> 16), (byte)(id >> 8), (byte)id, 6, 0x61, 0x62, 0x63] });
        await Task.WhenAny(pending, Task.Delay(TimeSpan.FromSeconds(2)));
        Assert.False(pending.IsCompleted, "a record was taken while the registry could not validate it");
        Assert.Equal(0, HighWatermark(server, "validated"));

        server.State.SchemaValidator = validator;
        server.State.SchemaRegistryStatus = SchemaRegistryStatus.Running;
        var delivered = await pending;
        Assert.Equal(0, delivered.Offset.Value);
        var e = await Assert.ThrowsAsync<ProduceException<Null, byte[]>>(() => producer.ProduceAsync("validated", new Message<Null, byte[]> { Value = [1, 2, 3] }));
        Assert.Equal(ErrorCode.InvalidRecord, e.Error.Code);
        Assert.Equal(1, HighWatermark(server, "validated"));
    }

    [Fact]
    public async Task A_validator_that_is_catching_up_refuses_retriably_and_the_record_lands_once_it_caught_up()
    {
        await using var server = await TributaryServer.StartEphemeralAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
        Assert.Equal(1, await http.RegisterAsync("validated-value", """{"type":"record","name":"V","fields":[{"name":"a","type":"int"}]}"""));
        await CreateValidatedTopicAsync(server, "validated");
        // A registry that has not applied id 2 yet, as a follower a fetch behind the registration.
        var lagging = new LaggingValidator(server.State.SchemaValidator!) { CatchingUp = true };
        server.State.SchemaValidator = lagging;
        using var producer = Producer(server, messageTimeoutMs: 30_000);
        var pending = producer.ProduceAsync("validated", new Message<Null, byte[]> { Value = [0, 0, 0, 0, 2, 2] });
        await Eventually.TrueAsync(() => Volatile.Read(ref lagging.Calls) >= 2, TimeSpan.FromSeconds(30), "the refused produce retried", () => lagging.Calls);
        Assert.False(pending.IsCompleted, "a record refused by a validator that is catching up was not retried");

        Assert.Equal(2, await http.RegisterAsync("validated-value",
            """{"type":"record","name":"V","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"""));
        Assert.Equal(0, (await pending).Offset.Value);
        // Caught up, the same refusal is final.
        lagging.CatchingUp = false;
        var e = await Assert.ThrowsAsync<ProduceException<Null, byte[]>>(() => producer.ProduceAsync("validated", new Message<Null, byte[]> { Value = [0, 0, 0, 0, 99, 2] }));
        Assert.Equal(ErrorCode.InvalidRecord, e.Error.Code);
        Assert.Equal(1, HighWatermark(server, "validated"));
    }

    /// <summary>The registry's validator, with the catching-up flag a test sets.</summary>
    private sealed class LaggingValidator(IRecordValidator inner) : IRecordValidator
    {
        public int Calls;

        public volatile bool CatchingUp;

        public string? Validate(string topic, ValidatedParts parts, ReadOnlyMemory<byte> batches)
        {
            Interlocked.Increment(ref Calls);
            return inner.Validate(topic, parts, batches);
        }

        public bool IsCatchingUp => CatchingUp;
    }
}
