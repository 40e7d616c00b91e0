using System.CommandLine;
using System.Text;
using System.Threading.Channels;
using Confluent.Kafka;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary produce TOPIC</c>: one record per stdin line (value, or key SEP value), then a summary
/// of what was acknowledged. Exits non-zero if any record was not delivered.
/// </summary>
public static class ProduceCommand
{
    public static Command Create()
    {
        var topic = new Argument<string>("topic") { Description = "Topic to write to" };
        var separator = new Option<string?>("--key-separator", "-k") { Description = "Split each line at the first SEP into key and value (lines without SEP get no key)" };
        var headers = new Option<string[]>("--header", "-H") { Description = "Header name=value added to every record (repeatable)" };
        var partition = new Option<int?>("--partition", "-p") { Description = "Write every record to this partition [default: partitioner]" };
        var acks = new Option<string>("--acks") { Description = "Acknowledgements to wait for", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var compression = new Option<string>("--compression", "-z") { Description = "Batch compression codec", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");

        var command = new Command("produce", "Write records from stdin, one per line") { topic, separator, headers, partition, acks, compression };
        command.WithClientOptions();
        command.SetGuardedAction(async (parse, ct) =>
        {
            var config = ClientOptions.ProducerConfig(parse);
            config.Acks = parse.GetValue(acks) switch { "0" => Acks.None, "1" => Acks.Leader, _ => Acks.All };
            config.CompressionType = Enum.Parse<CompressionType>(parse.GetValue(compression)!, ignoreCase: true);
            config.MessageTimeoutMs ??= 30_000; // librdkafka's 5 minutes is too long to learn a topic is missing
            config.LingerMs ??= 5;

            var recordHeaders = Assignments.ParseAll(parse.GetValue(headers), "--header");
            var run = new ProduceRun(parse.GetValue(topic)!, parse.GetValue(separator), recordHeaders, parse.GetValue(partition));
            using var producer = new ProducerBuilder<byte[]?, byte[]>(config).SetLogHandler(ClientOptions.Log).Build();
            return await run.ExecuteAsync(producer, Console.In, ct);
        });
        return command;
    }

    /// <summary>The state of one produce invocation: what was sent, and what the brokers acknowledged.</summary>
    private sealed class ProduceRun(string topic, string? separator, Dictionary<string, string> headers, int? partition)
    {
        private readonly Lock _lock = new();
        private readonly SortedDictionary<int, (long Count, long First, long Last)> _acked = [];
        private long _failed;
        private string? _firstError;

        public async Task<int> ExecuteAsync(IProducer<byte[]?, byte[]> producer, TextReader input, CancellationToken ct)
        {
            var sent = 0L;
            var interrupted = false;
            Action<DeliveryReport<byte[]?, byte[]>> onDelivery = OnDelivery;
            var lines = ReadLines(input);
            try
            {
                await foreach (var line in lines.ReadAllAsync(ct))
                {
                    ProduceOne(producer, ToMessage(line), onDelivery);
                    sent++;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                interrupted = true;
            }

            // Deliver what was accepted even after Ctrl-C: the user has seen those lines go.
            var remaining = producer.Flush(TimeSpan.FromSeconds(interrupted ? 5 : 60));
            PrintSummary(sent, remaining);
            if (remaining > 0)
            {
                Terminal.Error($"{remaining} record(s) still unacknowledged when giving up");
                return ErrorHandling.Failure;
            }
            if (_failed > 0)
            {
                Terminal.Error($"{_failed} record(s) not delivered: {_firstError}");
                return ErrorHandling.Failure;
            }
            return interrupted ? ErrorHandling.Interrupted : 0;
        }

        /// <summary>
        /// Reads stdin on a background thread: a read blocked on a terminal or pipe cannot be cancelled, and
        /// Ctrl-C must still flush what was sent and print the summary. The thread dies with the process.
        /// </summary>
        private static ChannelReader<string> ReadLines(TextReader input)
        {
            var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(4096) { SingleReader = true, SingleWriter = true });
            var reader = new Thread(() =>
            {
                try
                {
                    while (input.ReadLine() is { } line)
                    {
                        while (!channel.Writer.TryWrite(line))
                        {
                            channel.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult();
                        }
                    }
                    channel.Writer.Complete();
                }
                catch (Exception e)
                {
                    channel.Writer.Complete(e);
                }
            })
            { IsBackground = true, Name = "stdin reader" };
            reader.Start();
            return channel.Reader;
        }

        private void ProduceOne(IProducer<byte[]?, byte[]> producer, Message<byte[]?, byte[]> message, Action<DeliveryReport<byte[]?, byte[]>> onDelivery)
        {
            while (true)
            {
                try
                {
                    if (partition is { } p)
                    {
                        producer.Produce(new TopicPartition(topic, new Partition(p)), message, onDelivery);
                    }
                    else
                    {
                        producer.Produce(topic, message, onDelivery);
                    }
                    return;
                }
                catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(100)); // backpressure: wait for deliveries to free the queue
                }
            }
        }

        private Message<byte[]?, byte[]> ToMessage(string line)
        {
            byte[]? key = null;
            var value = line;
            if (separator is { Length: > 0 } && line.IndexOf(separator, StringComparison.Ordinal) is var at and >= 0)
            {
                key = Encoding.UTF8.GetBytes(line[..at]);
                value = line[(at + separator.Length)..];
            }
            var message = new Message<byte[]?, byte[]> { Key = key, Value = Encoding.UTF8.GetBytes(value) };
            if (headers.Count > 0)
            {
                message.Headers = [];
                foreach (var (name, headerValue) in headers)
                {
                    message.Headers.Add(name, Encoding.UTF8.GetBytes(headerValue));
                }
            }
            return message;
        }

        private void OnDelivery(DeliveryReport<byte[]?, byte[]> report)
        {
            lock (_lock)
            {
                if (report.Error.IsError)
                {
                    _failed++;
                    _firstError ??= ErrorHandling.Describe(report.Error);
                    return;
                }
                var offset = report.Offset.Value; // -1 (unknown) with acks=0
                _acked[report.Partition.Value] = _acked.TryGetValue(report.Partition.Value, out var s)
                    ? (s.Count + 1, s.First, offset)
                    : (1, offset, offset);
            }
        }

        private void PrintSummary(long sent, int remaining)
        {
            lock (_lock)
            {
                var acked = _acked.Values.Sum(s => s.Count);
                Terminal.Info($"Produced {acked} of {sent} record(s) to {topic}" + (_failed > 0 ? $", {_failed} failed" : "") + (remaining > 0 ? $", {remaining} pending" : ""));
                if (_acked.Count == 0)
                {
                    return;
                }
                var table = Terminal.NewTable("#PARTITION", "#RECORDS", "#FIRST-OFFSET", "#LAST-OFFSET");
                foreach (var (p, s) in _acked)
                {
                    table.AddText(p.ToString(), s.Count.ToString(), s.First < 0 ? "-" : s.First.ToString(), s.Last < 0 ? "-" : s.Last.ToString());
                }
                Terminal.Write(table);
            }
        }
    }
}
