using System.Text.Json.Nodes;
using Confluent.SchemaRegistry;
using Google.Protobuf.Reflection;
using Tributary.SchemaRegistry.Protobuf;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Confluent's serialized Protobuf form (a base64 FileDescriptorProto), which Confluent's .NET Protobuf serializer
/// registers and asks for with <c>format=serialized</c>, driven here through Confluent.SchemaRegistry 2.16's
/// CachedSchemaRegistryClient.
/// </summary>
public sealed class ProtobufSerializedFormatTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private const string Money = """
        syntax = "proto3";
        package compat.common;
        message Money { string currency = 1; int64 units = 2; }
        """;

    private const string Order = """
        syntax = "proto3";
        package compat;
        import "money.proto";
        option csharp_namespace = "Compat.Orders";
        message Order {
          string id = 1;
          compat.common.Money total = 2;
          map<string, int32> quantities = 3;
          oneof payment { string card = 4; string iban = 5; }
          optional string note = 6;
          repeated Line lines = 7;
          Status status = 8;
          reserved 20, 30 to 39;
          reserved "legacy";
          message Line { string sku = 1; repeated int32 tags = 2 [packed = false]; }
          enum Status { option allow_alias = true; NEW = 0; OPEN = 0; DONE = 1; reserved 5 to 7; }
        }
        service Orders { rpc Place (Order) returns (stream Order); }
        """;

    /// <summary>What protobuf-net makes of .proto text, with imports from <paramref name="imports"/>.</summary>
    private static FileDescriptorProto Descriptor(string text, params (string Name, string Text)[] imports)
    {
        var set = new FileDescriptorSet { AllowNameOnlyImport = true };
        foreach (var (name, body) in imports) set.Add(name, false, new StringReader(body));
        set.Add("main.proto", true, new StringReader(text));
        set.Process();
        Assert.DoesNotContain(set.GetErrors(), e => e.IsError);
        return set.Files.Single(f => f.Name == "main.proto");
    }

    private static byte[] Bytes(FileDescriptorProto d)
    {
        var copy = ProtoBuf.Serializer.DeepClone(d);
        copy.Name = "x";
        using var stream = new MemoryStream();
        ProtoBuf.Serializer.Serialize(stream, copy);
        return stream.ToArray();
    }

    [Fact]
    public void The_text_written_for_a_descriptor_describes_the_same_file()
    {
        var original = Descriptor(Order, ("money.proto", Money));
        var text = ProtobufDescriptorText.ToProto(original);
        var again = Descriptor(text, ("money.proto", Money));
        Assert.True(Bytes(original).AsSpan().SequenceEqual(Bytes(again)), text);
    }

    /// <summary>
    /// Confluent's serializers register an imported file under its file name, slash included, escaped in the path as
    /// %2F; references then name it unescaped, so the two must be one subject.
    /// </summary>
    [Fact]
    public async Task A_subject_named_after_a_proto_file_path_is_one_subject_escaped_or_not()
    {
        using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        var moneySubject = $"compat/money-{Guid.NewGuid():N}.proto";
        await client.RegisterSchemaAsync(moneySubject, new Schema(Money, SchemaType.Protobuf));
        Assert.Contains(moneySubject, await client.GetAllSubjectsAsync());
        var references = new List<Confluent.SchemaRegistry.SchemaReference> { new("money.proto", moneySubject, 1) };
        var subject = $"order-{Guid.NewGuid():N}-value";
        var id = await client.RegisterSchemaAsync(subject, new Schema(Order, references, SchemaType.Protobuf));
        var latest = await client.GetLatestSchemaAsync(subject);
        Assert.Equal((id, moneySubject), (latest.Id, latest.References.Single().Subject));
        Assert.Equal(1, (await client.GetLatestSchemaAsync(moneySubject)).Version);
    }

    [Fact]
    public async Task A_serialized_schema_with_a_reference_registers_and_reads_back_in_both_forms()
    {
        using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        var moneySubject = $"money-{Guid.NewGuid():N}";
        await client.RegisterSchemaAsync(moneySubject, new Schema(Money, SchemaType.Protobuf));
        var references = new List<Confluent.SchemaRegistry.SchemaReference> { new("money.proto", moneySubject, 1) };
        var serialized = Convert.ToBase64String(Bytes(Descriptor(Order, ("money.proto", Money))));
        var subject = $"order-{Guid.NewGuid():N}-value";

        var id = await client.RegisterSchemaAsync(subject, new Schema(serialized, references, SchemaType.Protobuf));
        // the same descriptor again is the same schema
        Assert.Equal(id, await client.RegisterSchemaAsync(subject, new Schema(serialized, references, SchemaType.Protobuf)));

        // stored as .proto text, as Confluent stores it
        var (status, stored) = await fixture.Http.GetJson($"/schemas/ids/{id}");
        Assert.Equal(200, status);
        var text = (string)stored!["schema"]!;
        Assert.Contains("message Order {", text, StringComparison.Ordinal);
        Assert.Contains("import \"money.proto\";", text, StringComparison.Ordinal);
        Assert.Equal("PROTOBUF", (string)stored["schemaType"]!);

        // and given back serialized on request
        var fetched = await client.GetSchemaAsync(id, "serialized");
        var descriptor = ProtobufDescriptorText.TryDecode(fetched.SchemaString);
        Assert.NotNull(descriptor);
        Assert.Equal("default", descriptor.Name);
        Assert.Equal(["money.proto"], descriptor.Dependencies);
        var order = Assert.Single(descriptor.MessageTypes);
        Assert.Equal("Order", order.Name);
        Assert.Equal(".compat.common.Money", order.Fields.Single(f => f.Number == 2).TypeName);
        Assert.Equal(moneySubject, Assert.Single(fetched.References).Subject);
        var (_, version) = await fixture.Http.GetJson($"/subjects/{subject}/versions/1?format=serialized");
        Assert.Equal(fetched.SchemaString, (string)version!["schema"]!);
        var (_, raw) = await fixture.Http.GetJson($"/schemas/ids/{id}/schema?format=serialized");
        Assert.Equal(fetched.SchemaString, raw!.GetValue<string>());

        // looking the descriptor up finds the version; the text the registry stored is the same schema too
        var found = await client.LookupSchemaAsync(subject, new Schema(serialized, references, SchemaType.Protobuf), ignoreDeletedSchemas: true, normalize: false);
        Assert.Equal(id, found.Id);
        Assert.Equal(id, await client.RegisterSchemaAsync(subject, new Schema(text, references, SchemaType.Protobuf)));
    }

    [Fact]
    public async Task Base64_that_is_no_descriptor_is_an_invalid_schema()
    {
        var body = new JsonObject { ["schema"] = Convert.ToBase64String("not a descriptor at all"u8.ToArray()), ["schemaType"] = "PROTOBUF" };
        await RestApiTests.Expect(422, 42201, fixture.Http.PostJson($"/subjects/pb-garbage-{Guid.NewGuid():N}/versions", body));
    }
}
