using System.Text;
using System.Text.Json;
using Tributary.Cli.Output;

namespace Tributary.Cli.Parsing;

/// <summary>One partition's replica list in a reassignment plan.</summary>
public sealed record PartitionMove(string Topic, int Partition, int[] Replicas);

/// <summary>
/// The JSON files of Kafka's <c>kafka-reassign-partitions.sh</c>, read and written the same way, so plans move between
/// the two tools: a reassignment <c>{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]}</c>
/// (log_dirs optional, and only "any": moving a replica between a broker's directories is AlterReplicaLogDirs, which
/// Tributary does not serve) and a topic list <c>{"version":1,"topics":[{"topic":"t"}]}</c>. Problems are refused with
/// Kafka's wording.
/// </summary>
public static class ReassignmentJson
{
    public static IReadOnlyList<PartitionMove> ParseReassignment(string json)
    {
        using var document = Parse(json);
        var root = document.RootElement;
        CheckVersion(root);
        var moves = new List<PartitionMove>();
        if (root.TryGetProperty("partitions", out var partitions))
        {
            if (partitions.ValueKind != JsonValueKind.Array) throw new CliException("\"partitions\" must be an array");
            foreach (var p in partitions.EnumerateArray())
            {
                var topic = p.TryGetProperty("topic", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : throw new CliException("every partition needs a \"topic\" string");
                var partition = p.TryGetProperty("partition", out var n) && n.TryGetInt32(out var index) ? index : throw new CliException($"partition of {topic} needs a \"partition\" number");
                if (!p.TryGetProperty("replicas", out var r) || r.ValueKind != JsonValueKind.Array)
                    throw new CliException($"{topic}-{partition} needs a \"replicas\" array");
                var replicas = r.EnumerateArray().Select(x => x.TryGetInt32(out var id) ? id : throw new CliException($"{topic}-{partition}: replicas must be broker ids")).ToArray();
                if (replicas.GroupBy(x => x).FirstOrDefault(g => g.Count() > 1) is { } twice)
                    throw new CliException($"Partition replica lists may not contain duplicate entries: {topic}-{partition} contains multiple entries for {twice.Key}.");
                if (p.TryGetProperty("log_dirs", out var dirs) && dirs.ValueKind == JsonValueKind.Array)
                {
                    var list = dirs.EnumerateArray().Select(d => d.GetString()).ToList();
                    if (list.Count != replicas.Length)
                        throw new CliException($"Size of replicas list [{string.Join(", ", replicas)}] is different from size of log dirs list [{string.Join(", ", list)}] for partition {topic}-{partition}");
                    if (list.Any(d => d != "any"))
                        throw new CliException($"{topic}-{partition}: log_dirs other than \"any\" move replicas between a broker's directories (AlterReplicaLogDirs), which Tributary does not do");
                }
                moves.Add(new PartitionMove(topic, partition, replicas));
            }
        }
        if (moves.Count == 0) throw new CliException("Partition reassignment list cannot be empty.");
        var duplicates = moves.GroupBy(m => (m.Topic, m.Partition)).Where(g => g.Count() > 1).Select(g => $"{g.Key.Topic}-{g.Key.Partition}").ToList();
        if (duplicates.Count > 0) throw new CliException($"Cannot reassign a partition more than once in one plan: {string.Join(",", duplicates)}");
        return moves;
    }

    public static IReadOnlyList<string> ParseTopicsToMove(string json)
    {
        using var document = Parse(json);
        var root = document.RootElement;
        CheckVersion(root);
        var topics = root.TryGetProperty("topics", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Select(t => t.TryGetProperty("topic", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString()! : throw new CliException("every entry of \"topics\" needs a \"topic\" string")).ToList()
            : [];
        if (topics.Count == 0) throw new CliException("List of topics to reassign contains no topics.");
        if (topics.GroupBy(t => t).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new CliException($"List of topics to reassign contains duplicate entries: {twice.Key}");
        return topics;
    }

    /// <summary>Kafka's compact form, partitions sorted by topic and partition, every log dir "any".</summary>
    public static string Write(IEnumerable<PartitionMove> moves)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", 1);
            writer.WriteStartArray("partitions");
            foreach (var move in moves.OrderBy(m => m.Topic, StringComparer.Ordinal).ThenBy(m => m.Partition))
            {
                writer.WriteStartObject();
                writer.WriteString("topic", move.Topic);
                writer.WriteNumber("partition", move.Partition);
                writer.WriteStartArray("replicas");
                foreach (var r in move.Replicas) writer.WriteNumberValue(r);
                writer.WriteEndArray();
                writer.WriteStartArray("log_dirs");
                foreach (var _ in move.Replicas) writer.WriteStringValue("any");
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static JsonDocument Parse(string json)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CliException($"not valid JSON: {e.Message}");
        }
    }

    private static void CheckVersion(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new CliException("expected a JSON object");
        if (root.TryGetProperty("version", out var version) && !(version.TryGetInt32(out var v) && v == 1))
            throw new CliException($"Not supported version field value {version.GetRawText()}");
    }
}
