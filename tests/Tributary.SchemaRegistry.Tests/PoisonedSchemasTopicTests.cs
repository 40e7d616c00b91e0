using System.Text;
using Tributary.Broker;
using Tributary.Protocol.Records;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Records in <c>_schemas</c> that are not in Confluent's layouts (issue 20, item 2). They are written below the
/// produce path, straight onto the partition, as a damaged or hand-edited topic would hold them. Replay skips and
/// reports each one; the broker and the registry start, and every valid record before and after is served.
/// </summary>
public sealed class PoisonedSchemasTopicTests
{
    private const string RecordV1 = """{"type":"record","name":"P","fields":[{"name":"a","type":"int"}]}""";
    private const string RecordV2 = """{"type":"record","name":"P","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}""";

    /// <summary>Keys and values replay cannot decode; each would have stopped start-up or corrupted the state before.</summary>
    private static readonly (string Key, string? Value)[] Poison =
    [
        ("\u00ff\u0000not json", "{}"),
        ("""{"keytype":"SCHEMA","subject":"p-value","version":"one","magic":1}""", """{"subject":"p-value","version":1,"id":1,"schema":"\"int\""}"""),
        ("""{"keytype":"SCHEMA","subject":"p-value","version":7,"magic":1}""", """{"subject":"p-value","version":7,"schema":"\"int\""}"""),
        ("""{"keytype":"SCHEMA","subject":"p-value","version":8,"magic":1}""", """{"subject":"p-value","version":8,"id":"x","schema":"\"int\""}"""),
        // a value that is not an object must not read as a tombstone of the valid version 1
        ("""{"keytype":"SCHEMA","subject":"p-value","version":1,"magic":1}""", "[1,2]"),
        ("""{"keytype":"SCHEMA","subject":"p-value","version":1,"magic":1}""", "{\"subject\":"),
        ("""{"keytype":"SCHEMA","version":9,"magic":1}""", """{"subject":"p-value","version":9,"id":9,"schema":"\"int\""}"""),
        ("""{"keytype":"CONFIG","subject":null,"magic":0}""", """{"compatibilityLevel":7}"""),
        ("""{"keytype":"MODE","subject":null,"magic":0}""", """{"mode":["READONLY"]}"""),
        ("""{"keytype":"DELETE_SUBJECT","subject":"p-value","magic":0}""", """{"subject":"p-value","version":"all"}"""),
    ];

    [Fact]
    public async Task Replay_skips_undecodable_records_and_serves_the_valid_ones_around_them()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tributary-sr-poison-" + Guid.NewGuid().ToString("N"));
        try
        {
            int before, after;
            await using (var server = await TributaryServer.StartEphemeralAsync(dir))
            {
                using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
                before = await http.RegisterAsync("p-value", RecordV1);
                var log = server.State.Topics.GetPartition("_schemas", 0)!;
                foreach (var (key, value) in Poison)
                {
                    var batch = new RecordBatchBuilder()
                        .Add(0, Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value))
                        .Build();
                    await log.AppendAsync(batch);
                }
                after = await http.RegisterAsync("p-value", RecordV2);
            }

            await using (var server = await TributaryServer.StartEphemeralAsync(dir))
            {
                Assert.NotNull(server.SchemaRegistryUrl);
                Assert.Equal(Poison.Length, server.Schemas!.SkippedRecords);
                using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
                Assert.Equal("[1,2]", (await http.GetJson("/subjects/p-value/versions")).Body!.ToJsonString());
                var (status, v1) = await http.GetJson("/subjects/p-value/versions/1");
                Assert.Equal(200, status);
                Assert.Equal(before, (int)v1!["id"]!);
                var (_, byId) = await http.GetJson($"/schemas/ids/{after}");
                Assert.Contains("\"b\"", (string)byId!["schema"]!, StringComparison.Ordinal);
                Assert.Equal("BACKWARD", (string)(await http.GetJson("/config")).Body!["compatibilityLevel"]!);
                Assert.Equal("READWRITE", (string)(await http.GetJson("/mode")).Body!["mode"]!);
                // the registry still writes: compatibility reads the (valid) global config
                var third = """{"type":"record","name":"P","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0},{"name":"c","type":"int","default":0}]}""";
                Assert.True(await http.RegisterAsync("p-value", third) > after);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        }
    }
}
