using System.Text.Json.Nodes;
using Confluent.Kafka;
using Tributary.Broker;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The registry's state lives in the compacted _schemas topic and comes back identical after a restart.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Ids_versions_configs_and_deletes_survive_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tributary-sr-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            string before;
            int maxId;
            await using (var server = await TributaryServer.StartEphemeralAsync(dir))
            {
                using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
                await http.RegisterAsync("a-value", "\"string\"");
                await http.RegisterAsync("b-value", """{"type":"record","name":"B","fields":[{"name":"x","type":"int"}]}""");
                await http.RegisterAsync("b-value", """{"type":"record","name":"B","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":0}]}""");
                maxId = await http.RegisterAsync("c-value", """{"type":"object"}""", "JSON");
                await http.PutJson("/config/b-value", new { compatibility = "FULL" });
                await http.PutJson("/mode/a-value", new { mode = "READONLY" });
                await http.DeleteJson("/subjects/b-value/versions/1");
                await http.DeleteJson("/subjects/c-value");
                await http.DeleteJson("/subjects/c-value?permanent=true");
                before = await SnapshotAsync(http);

                var topic = server.State.Topics.Get("_schemas");
                Assert.NotNull(topic);
                Assert.True(topic!.IsInternal);
                Assert.Equal("compact", topic.Configs["cleanup.policy"]);
            }
            await using (var server = await TributaryServer.StartEphemeralAsync(dir))
            {
                using var http = new HttpClient { BaseAddress = new Uri(server.SchemaRegistryUrl!) };
                Assert.Equal(before, await SnapshotAsync(http));
                // the permanently deleted id is not handed out again
                Assert.True(await http.RegisterAsync("d-value", "\"bytes\"") > maxId);

                // the topic is readable by any Kafka client, in Confluent's layout
                using var consumer = new ConsumerBuilder<string, string?>(new ConsumerConfig
                {
                    BootstrapServers = server.BootstrapServers,
                    GroupId = "sr-test-" + Guid.NewGuid().ToString("N"),
                    AutoOffsetReset = AutoOffsetReset.Earliest,
                    EnableAutoCommit = false,
                }).Build();
                consumer.Assign(new TopicPartitionOffset("_schemas", 0, Offset.Beginning));
                var keys = new List<string>();
                for (var i = 0; i < 100 && keys.Count < 5; i++)
                {
                    var result = consumer.Consume(TimeSpan.FromMilliseconds(500));
                    if (result?.Message is { } m) keys.Add(m.Key);
                }
                Assert.Contains("""{"keytype":"SCHEMA","subject":"a-value","version":1,"magic":1}""", keys);
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

    private static async Task<string> SnapshotAsync(HttpClient http)
    {
        var snapshot = new JsonObject();
        var (_, subjects) = await http.GetJson("/subjects?deleted=true");
        snapshot["subjects"] = subjects?.DeepClone();
        foreach (var s in subjects!.AsArray().Select(x => (string)x!))
        {
            var (_, versions) = await http.GetJson($"/subjects/{s}/versions?deleted=true");
            foreach (var v in versions!.AsArray().Select(x => (int)x!))
                snapshot[$"{s}/{v}"] = (await http.GetJson($"/subjects/{s}/versions/{v}?deleted=true")).Body?.DeepClone();
            snapshot[$"{s}/config"] = (await http.GetJson($"/config/{s}")).Body?.DeepClone();
            snapshot[$"{s}/mode"] = (await http.GetJson($"/mode/{s}")).Body?.DeepClone();
        }
        snapshot["config"] = (await http.GetJson("/config")).Body?.DeepClone();
        return snapshot.ToJsonString();
    }
}
