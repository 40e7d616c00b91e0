using Avro;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Confluent.Kafka.SyncOverAsync;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>Confluent's own registry client and serializers, producing and consuming through Tributary.</summary>
public sealed class SerdesTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private const string V1 = """{"type":"record","name":"Payment","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}""";
    private const string V2 = """{"type":"record","name":"Payment","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"currency","type":"string","default":"EUR"}]}""";
    private const string Breaking = """{"type":"record","name":"Payment","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"amount","type":"double"}]}""";

    private ProducerConfig ProducerConfig => new() { BootstrapServers = fixture.Server.BootstrapServers };

    private ConsumerConfig ConsumerConfig => new()
    {
        BootstrapServers = fixture.Server.BootstrapServers,
        GroupId = "serdes-" + Guid.NewGuid().ToString("N"),
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false,
    };

    private static GenericRecord Payment(string schemaJson, string id, double amount, string? currency = null)
    {
        var schema = (RecordSchema)global::Avro.Schema.Parse(schemaJson);
        var record = new GenericRecord(schema);
        record.Add("id", id);
        record.Add("amount", amount);
        if (currency is not null) record.Add("currency", currency);
        return record;
    }

    [Fact]
    public async Task Avro_serializer_auto_registers_evolves_and_is_refused_a_breaking_change()
    {
        var topic = "payments-" + Guid.NewGuid().ToString("N")[..8];
        using var registry = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        using (var producer = new ProducerBuilder<string, GenericRecord>(ProducerConfig)
            .SetValueSerializer(new AvroSerializer<GenericRecord>(registry)).Build())
        {
            await producer.ProduceAsync(topic, new Message<string, GenericRecord> { Key = "1", Value = Payment(V1, "p1", 10.5) });
            await producer.ProduceAsync(topic, new Message<string, GenericRecord> { Key = "2", Value = Payment(V2, "p2", 20, "USD") });
            var error = await Assert.ThrowsAsync<ProduceException<string, GenericRecord>>(() =>
                producer.ProduceAsync(topic, new Message<string, GenericRecord> { Key = "3", Value = BreakingPayment() }));
            var inner = Assert.IsType<SchemaRegistryException>(error.InnerException);
            Assert.Equal(409, (int)inner.Status);
            Assert.Contains("TYPE_MISMATCH", inner.Message, StringComparison.Ordinal);
        }
        var versions = await registry.GetSubjectVersionsAsync(topic + "-value");
        Assert.Equal([1, 2], versions);
        var latest = await registry.GetLatestSchemaAsync(topic + "-value");
        Assert.Equal(2, latest.Version);

        using var consumer = new ConsumerBuilder<string, GenericRecord>(ConsumerConfig)
            .SetValueDeserializer(new AvroDeserializer<GenericRecord>(registry).AsSyncOverAsync()).Build();
        consumer.Subscribe(topic);
        var seen = new List<GenericRecord>();
        Eventually.True(() =>
        {
            for (var result = consumer.Consume(TimeSpan.FromSeconds(1)); result is not null && seen.Count < 2; result = seen.Count < 2 ? consumer.Consume(TimeSpan.FromSeconds(1)) : null)
            {
                if (result.Message is { } m) seen.Add(m.Value);
            }
            return seen.Count == 2;
        }, TimeSpan.FromSeconds(30), "both Avro records", () => $"{seen.Count} read");
        Assert.Equal("p1", seen[0]["id"]);
        Assert.Equal(10.5, seen[0]["amount"]);
        Assert.Equal("USD", seen[1]["currency"]);
        consumer.Close();
    }

    private static GenericRecord BreakingPayment()
    {
        var record = new GenericRecord((RecordSchema)global::Avro.Schema.Parse(Breaking));
        record.Add("id", 3L);
        record.Add("amount", 1.0);
        return record;
    }

    public sealed class Reading
    {
        public string? Sensor { get; set; }

        public double Value { get; set; }
    }

    [Fact]
    public async Task Json_serializer_round_trips_through_the_registry()
    {
        var topic = "readings-" + Guid.NewGuid().ToString("N")[..8];
        using var registry = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        using (var producer = new ProducerBuilder<string, Reading>(ProducerConfig)
            .SetValueSerializer(new JsonSerializer<Reading>(registry)).Build())
        {
            await producer.ProduceAsync(topic, new Message<string, Reading> { Key = "s1", Value = new Reading { Sensor = "s1", Value = 21.5 } });
        }
        var registered = await registry.GetLatestSchemaAsync(topic + "-value");
        Assert.Equal(SchemaType.Json, registered.SchemaType);
        using var consumer = new ConsumerBuilder<string, Reading>(ConsumerConfig)
            .SetValueDeserializer(new JsonDeserializer<Reading>().AsSyncOverAsync()).Build();
        consumer.Subscribe(topic);
        var got = Eventually.Value(() => consumer.Consume(TimeSpan.FromSeconds(1))?.Message?.Value, r => r is not null, TimeSpan.FromSeconds(30), "the JSON record");
        Assert.Equal(21.5, got!.Value);
        consumer.Close();
    }

    [Fact]
    public async Task Client_api_lookup_compatibility_and_config()
    {
        using var registry = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        var subject = "client-" + Guid.NewGuid().ToString("N")[..8];
        var id = await registry.RegisterSchemaAsync(subject, new Confluent.SchemaRegistry.Schema(V1, SchemaType.Avro));
        var byId = await registry.GetSchemaAsync(id);
        Assert.Equal(SchemaType.Avro, byId.SchemaType);
        var looked = await registry.LookupSchemaAsync(subject, new Confluent.SchemaRegistry.Schema(V1, SchemaType.Avro), ignoreDeletedSchemas: true);
        Assert.Equal(id, looked.Id);
        Assert.True(await registry.IsCompatibleAsync(subject, new Confluent.SchemaRegistry.Schema(V2, SchemaType.Avro)));
        Assert.False(await registry.IsCompatibleAsync(subject, new Confluent.SchemaRegistry.Schema(Breaking, SchemaType.Avro)));
        await registry.UpdateCompatibilityAsync(Compatibility.Full, subject);
        Assert.Equal(Compatibility.Full, await registry.GetCompatibilityAsync(subject));
        Assert.Contains(subject, await registry.GetAllSubjectsAsync());
    }

    [Fact]
    public async Task Broker_rejects_records_without_a_registered_schema_id_when_validation_is_on()
    {
        var topic = "validated-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = fixture.Server.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = topic,
                NumPartitions = 1,
                ReplicationFactor = 1,
                Configs = new Dictionary<string, string> { ["confluent.value.schema.validation"] = "true" },
            }]);
        }
        using var registry = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        using (var raw = new ProducerBuilder<string, byte[]>(ProducerConfig).Build())
        {
            var error = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() =>
                raw.ProduceAsync(topic, new Message<string, byte[]> { Key = "k", Value = "plain text"u8.ToArray() }));
            Assert.Equal(ErrorCode.InvalidRecord, error.Error.Code);
            // a well-formed id that is not registered under the subject
            var error2 = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() =>
                raw.ProduceAsync(topic, new Message<string, byte[]> { Key = "k", Value = [0, 0, 0, 0x7f, 0x7f, 1] }));
            Assert.Equal(ErrorCode.InvalidRecord, error2.Error.Code);
        }
        using var producer = new ProducerBuilder<string, GenericRecord>(ProducerConfig)
            .SetValueSerializer(new AvroSerializer<GenericRecord>(registry)).Build();
        var ok = await producer.ProduceAsync(topic, new Message<string, GenericRecord> { Key = "1", Value = Payment(V1, "p", 1) });
        Assert.Equal(PersistenceStatus.Persisted, ok.Status);
    }
}
