using System.Buffers;
using System.CommandLine;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary consume TOPIC</c>: prints records to stdout. Without <c>--group</c> it assigns the
/// partitions itself (nothing is committed, nothing joins a group); with one it subscribes and commits.
/// </summary>
public static class ConsumeCommand
{
    public static Command Create()
    {
        var topic = new Argument<string>("topic") { Description = "Topic to read" };
        var from = new Option<string>("--from", "-o") { Description = "Start at beginning, end, OFFSET, @TIMESTAMP_MS or an ISO-8601 time", DefaultValueFactory = _ => "beginning" };
        var partitions = new Option<int[]>("--partition", "-p") { Description = "Read only these partitions (repeatable) [default: all]" };
        var num = new Option<long?>("--num", "-n") { Description = "Stop after N records" };
        var format = new Option<string>("--format", "-f") { Description = "text: value per line; json: one object per record", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var printKeys = new Option<bool>("--print-keys", "-K") { Description = "In text format, print key<TAB>value" };
        var group = new Option<string?>("--group", "-g") { Description = "Consume as a member of this group, committing offsets (--from applies where the group has none)" };
        var exitAtEnd = new Option<bool>("--exit", "-e") { Description = "Exit when every partition has reached its end" };

        var command = new Command("consume", "Read records and print them to stdout") { topic, from, partitions, num, format, printKeys, group, exitAtEnd };
        command.WithClientOptions();
        command.SetGuardedAction((parse, ct) =>
        {
            var settings = new ConsumeSettings(
                parse.GetValue(topic)!,
                StartPosition.Parse(parse.GetValue(from)!),
                parse.GetValue(partitions) ?? [],
                parse.GetValue(num),
                parse.GetValue(format) == "json",
                parse.GetValue(printKeys),
                parse.GetValue(group),
                parse.GetValue(exitAtEnd));
            if (settings.Group is not null && settings.Partitions.Length > 0)
            {
                throw new CliException("--partition cannot be combined with --group: the group assigns partitions");
            }
            if (settings.Num is <= 0)
            {
                throw new CliException("--num must be positive");
            }
            // librdkafka's consumer blocks its thread; keep it off the thread pool's few threads.
            return Task.Factory.StartNew(() => Run(parse, settings, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        });
        return command;
    }

    private sealed record ConsumeSettings(string Topic, StartPosition From, int[] Partitions, long? Num, bool Json, bool PrintKeys, string? Group, bool ExitAtEnd);

    private static int Run(ParseResult parse, ConsumeSettings settings, CancellationToken ct)
    {
        var config = ClientOptions.ConsumerConfig(parse, settings.Group);
        config.EnablePartitionEof = settings.ExitAtEnd;
        config.AutoOffsetReset = settings.From.Offset == Offset.End ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest;

        var builder = new ConsumerBuilder<byte[]?, byte[]?>(config).SetLogHandler(ClientOptions.Log);
        if (settings.Group is not null && !settings.From.IsLogical)
        {
            // An exact offset or a timestamp overrides the group's committed position for every partition it is given.
            builder.SetPartitionsAssignedHandler((consumer, assigned) => StartOffsets(consumer, assigned, settings.From));
        }
        using var consumer = builder.Build();

        if (settings.Group is null)
        {
            using var admin = ClientOptions.Admin(parse);
            var known = ClientOptions.Topic(admin, settings.Topic).Partitions.Select(p => p.PartitionId).ToHashSet();
            var chosen = settings.Partitions.Length > 0 ? settings.Partitions : known.Order().ToArray();
            if (chosen.FirstOrDefault(p => !known.Contains(p), -1) is var missing and >= 0)
            {
                throw new CliException($"topic '{settings.Topic}' has no partition {missing}");
            }
            var start = StartOffsets(consumer, chosen.Select(p => new TopicPartition(settings.Topic, p)).ToList(), settings.From);
            Terminal.Debug($"assigning {string.Join(", ", start)}");
            consumer.Assign(start);
        }
        else
        {
            consumer.Subscribe(settings.Topic);
        }

        using var output = new RecordWriter(settings.Json, settings.PrintKeys);
        var count = 0L;
        var atEnd = new HashSet<TopicPartition>();
        var joinDeadline = settings.Group is null ? (DateTime?)null : DateTime.UtcNow + TimeSpan.FromSeconds(15);
        try
        {
            while (!ct.IsCancellationRequested && (settings.Num is null || count < settings.Num))
            {
                ConsumeResult<byte[]?, byte[]?>? result;
                try
                {
                    result = consumer.Consume(TimeSpan.FromMilliseconds(200));
                }
                catch (ConsumeException e) when (!e.Error.IsFatal && e.Error.Code is not (ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_UnknownPartition or ErrorCode.TopicAuthorizationFailed or ErrorCode.GroupAuthorizationFailed))
                {
                    Terminal.Warn(ErrorHandling.Describe(e.Error));
                    continue;
                }
                if (result is null)
                {
                    output.Flush(); // idle: let a reader downstream see what we have
                    if (joinDeadline < DateTime.UtcNow && consumer.Assignment.Count == 0)
                    {
                        // librdkafka retries forever in silence when the group cannot be joined.
                        Terminal.Warn($"no partitions assigned by group '{settings.Group}' yet; still waiting (does the cluster support consumer groups?)");
                        joinDeadline = null;
                    }
                    continue;
                }
                if (result.IsPartitionEOF)
                {
                    atEnd.Add(result.TopicPartition);
                    if (atEnd.Count >= consumer.Assignment.Count && consumer.Assignment.Count > 0)
                    {
                        break;
                    }
                    continue;
                }
                atEnd.Remove(result.TopicPartition);
                output.Write(result);
                count++;
            }
        }
        finally
        {
            output.Flush();
            if (settings.Group is not null)
            {
                consumer.Close(); // leave the group now rather than after the session timeout
            }
        }
        return 0;
    }

    private static List<TopicPartitionOffset> StartOffsets(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> partitions, StartPosition from)
    {
        if (from.TimestampMs is not { } ms)
        {
            return partitions.Select(p => new TopicPartitionOffset(p, from.Offset)).ToList();
        }
        // No record at or after the time means the partition's end: wait for new records.
        return consumer.OffsetsForTimes(partitions.Select(p => new TopicPartitionTimestamp(p, new Timestamp(ms, TimestampType.CreateTime))), ClientOptions.Timeout)
            .Select(o => o.Offset.IsSpecial ? new TopicPartitionOffset(o.TopicPartition, Offset.End) : o)
            .ToList();
    }

    /// <summary>
    /// Writes records to stdout through one buffer: one record per line, text or JSON.
    /// The caller flushes when idle so piped output is neither stalled nor written byte by byte.
    /// </summary>
    private sealed class RecordWriter(bool json, bool printKeys) : IDisposable
    {
        private readonly Stream _stdout = Console.OpenStandardOutput();
        private readonly ArrayBufferWriter<byte> _buffer = new(1 << 16);
        private readonly bool _interactive = !Console.IsOutputRedirected;
        private Utf8JsonWriter? _json;

        public void Write(ConsumeResult<byte[]?, byte[]?> result)
        {
            if (json)
            {
                WriteJson(result);
            }
            else
            {
                if (printKeys)
                {
                    _buffer.Write(result.Message.Key ?? []);
                    _buffer.Write("\t"u8);
                }
                _buffer.Write(result.Message.Value ?? []);
            }
            _buffer.Write("\n"u8);
            if (_interactive || _buffer.WrittenCount > (1 << 16))
            {
                Flush();
            }
        }

        private void WriteJson(ConsumeResult<byte[]?, byte[]?> result)
        {
            _json ??= new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            _json.Reset(_buffer);
            var m = result.Message;
            _json.WriteStartObject();
            _json.WriteString("topic", result.Topic);
            _json.WriteNumber("partition", result.Partition.Value);
            _json.WriteNumber("offset", result.Offset.Value);
            _json.WriteNumber("timestamp", m.Timestamp.UnixTimestampMs);
            WriteBytes("key", m.Key);
            WriteBytes("value", m.Value);
            _json.WriteStartArray("headers");
            foreach (var header in m.Headers ?? [])
            {
                _json.WriteStartObject();
                _json.WriteString("key", header.Key);
                WriteBytes("value", header.GetValueBytes());
                _json.WriteEndObject();
            }
            _json.WriteEndArray();
            _json.WriteEndObject();
            _json.Flush();
        }

        private void WriteBytes(string name, byte[]? bytes)
        {
            if (bytes is null)
            {
                _json!.WriteNull(name);
            }
            else
            {
                _json!.WriteString(name, Encoding.UTF8.GetString(bytes));
            }
        }

        public void Flush()
        {
            if (_buffer.WrittenCount == 0)
            {
                return;
            }
            _stdout.Write(_buffer.WrittenSpan);
            _stdout.Flush();
            _buffer.ResetWrittenCount();
        }

        public void Dispose()
        {
            Flush();
            _json?.Dispose();
            _stdout.Dispose();
        }
    }
}
