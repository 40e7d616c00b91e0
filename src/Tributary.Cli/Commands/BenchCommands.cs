using System.CommandLine;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Spectre.Console;
using Tributary.Cli.Bench;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary bench produce|consume|e2e|rebalance</c>: load generation against any Kafka-compatible cluster through
/// Confluent.Kafka (librdkafka), so the same run measures Tributary and other brokers side by side.
/// Progress goes to stderr; the summary table (or --json) to stdout.
/// </summary>
public static class BenchCommands
{
    private static readonly Option<string?> Topic = new("--topic", "-t") { Description = "Topic to use [default: bench-<mode>]; created if missing" };
    private static readonly Option<int> Partitions = new("--partitions", "-p") { Description = "Partitions (when the topic is created)", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> Size = new("--size", "-s") { Description = "Record value size in bytes", DefaultValueFactory = _ => 100 };
    private static readonly Option<bool> Json = new("--json") { Description = "Print the result as JSON" };
    private static readonly Option<int> Idle = new("--idle-connections") { Description = "Hold this many idle client connections open during the run", DefaultValueFactory = _ => 0 };
    private static readonly Option<int?> ServerPid = new("--server-pid") { Description = "Report the resident memory of this local broker process at start and end" };

    public static Command Create()
    {
        var bench = new Command("bench", "Measure throughput and latency of a Kafka-compatible cluster") { ProduceCommand(), ConsumeCommand(), EndToEndCommand(), RebalanceCommand() };
        bench.WithClientOptions();
        return bench;
    }

    private static Command ProduceCommand()
    {
        var count = new Option<long>("--count", "-n") { Description = "Records to send (0: until --duration)", DefaultValueFactory = _ => 0 };
        var duration = new Option<double>("--duration", "-d") { Description = "Seconds to measure when no --count", DefaultValueFactory = _ => 10 };
        var warmup = new Option<double>("--warmup") { Description = "Seconds excluded from the figures", DefaultValueFactory = _ => 2 };
        var producers = new Option<int>("--producers") { Description = "Producer instances, each on its own thread", DefaultValueFactory = _ => 1 };
        var acks = new Option<string>("--acks") { Description = "all, 1 or 0", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var linger = new Option<double>("--linger-ms") { Description = "Producer linger.ms", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch-size") { Description = "Producer batch.size in bytes", DefaultValueFactory = _ => 1_000_000 };
        var compression = new Option<string>("--compression", "-z") { Description = "none, gzip, snappy, lz4 or zstd", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");
        var client = new Option<string>("--client")
        {
            Description = "librdkafka: its C API (measures the broker); dotnet: Confluent.Kafka's .NET producer; "
                + "wire: the benchmark's own producer, pipelined like Kafka's Java client (5 requests in flight per connection)",
            DefaultValueFactory = _ => "librdkafka",
        };
        client.AcceptOnlyFromAmong("librdkafka", "dotnet", "wire");
        var idempotence = new Option<bool>("--idempotence") { Description = "Idempotent producers (enable.idempotence=true; needs --acks all)" };
        var transactionalCommit = new Option<int>("--transactional-commit-ms")
        {
            Description = "Transactional producers (a transactional.id each, idempotent) committing every N ms; 0: not transactional",
            DefaultValueFactory = _ => 0,
        };

        var keys = new Option<int>("--keys")
        {
            Description = "Give records keys, cycling over this many distinct keys (what a compacted topic needs); 0: no keys",
            DefaultValueFactory = _ => 0,
        };

        var rate = new Option<long>("--rate", "-r")
        {
            Description = "Offered records per second, shared by the producers (open loop, for latency at a given load); 0: as fast as they go",
            DefaultValueFactory = _ => 0,
        };

        var command = new Command("produce", "Records/s, MB/s and acknowledgement latency of producers")
        {
            Topic, Partitions, Size, count, duration, warmup, producers, acks, linger, batch, compression, client, idempotence, transactionalCommit, keys, rate, Idle, ServerPid, Json,
        };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var topic = parse.GetValue(Topic) ?? "bench-produce";
            var ackMode = ParseAcks(parse.GetValue(acks)!);
            if (parse.GetValue(transactionalCommit) < 0) throw new CliException("--transactional-commit-ms must be 0 or more");
            if (parse.GetValue(keys) is < 0 or > int.MaxValue / BenchKeys.Width) throw new CliException("--keys must be between 0 and 178956970");
            if ((parse.GetValue(idempotence) || parse.GetValue(transactionalCommit) > 0) && ackMode != Acks.All)
                throw new CliException("idempotent and transactional producers need --acks all");
            if (parse.GetValue(rate) < 0) throw new CliException("--rate must be 0 or more");
            if (parse.GetValue(client) == "wire" && ackMode == Acks.None)
                throw new CliException("the wire producer waits for every acknowledgement: use --acks 1 or all");
            var partitions = await EnsureTopicAsync(parse, topic, parse.GetValue(Partitions));
            var options = new ProduceBenchOptions(topic, partitions, parse.GetValue(Size), parse.GetValue(count),
                parse.GetValue(count) > 0 ? null : TimeSpan.FromSeconds(parse.GetValue(duration)), TimeSpan.FromSeconds(parse.GetValue(warmup)), parse.GetValue(producers),
                ackMode, parse.GetValue(linger), parse.GetValue(batch),
                Enum.Parse<CompressionType>(parse.GetValue(compression)!, ignoreCase: true),
                parse.GetValue(client) switch { "dotnet" => BenchClient.DotNet, "wire" => BenchClient.Wire, _ => BenchClient.Librdkafka },
                parse.GetValue(idempotence), parse.GetValue(transactionalCommit), parse.GetValue(keys), parse.GetValue(rate));
            var benchmark = new ProduceBenchmark(ClientOptions.ProducerConfig(parse), options);
            var result = await WithSurroundingsAsync(parse, ct, () => WithProgressAsync("produced", parse.GetValue(Json), p => benchmark.RunAsync(p, ct)));
            return Report(result, parse.GetValue(Json));
        });
        return command;
    }

    private static Command ConsumeCommand()
    {
        var count = new Option<long>("--count", "-n") { Description = "Records to read (0: everything present at the start)", DefaultValueFactory = _ => 0 };
        var consumers = new Option<int>("--consumers") { Description = "Consumers, partitions split between them", DefaultValueFactory = _ => 1 };
        var prepare = new Option<long>("--prepare") { Description = "First produce this many records of --size into the topic", DefaultValueFactory = _ => 0 };
        var client = new Option<string>("--client") { Description = "librdkafka: its C API (measures the broker); dotnet: Confluent.Kafka's .NET consumer", DefaultValueFactory = _ => "librdkafka" };
        client.AcceptOnlyFromAmong("librdkafka", "dotnet");
        var command = new Command("consume", "Records/s and MB/s reading a topic from the beginning")
        {
            Topic, Partitions, Size, count, consumers, prepare, client, Json,
        };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var topic = parse.GetValue(Topic) ?? "bench-consume";
            var partitions = await EnsureTopicAsync(parse, topic, parse.GetValue(Partitions));
            if (parse.GetValue(prepare) is > 0 and var n)
            {
                var fill = new ProduceBenchmark(ClientOptions.ProducerConfig(parse),
                    new ProduceBenchOptions(topic, partitions, parse.GetValue(Size), n, Acks: Acks.Leader, LingerMs: 20));
                var filled = await WithProgressAsync("prepared", parse.GetValue(Json), p => fill.RunAsync(p, ct));
                if (filled.Errors > 0) throw new CliException($"{filled.Errors} records failed while preparing the topic");
            }
            var benchmark = new ConsumeBenchmark(ClientOptions.ConsumerConfig(parse), new ConsumeBenchOptions(topic, partitions, parse.GetValue(count), parse.GetValue(consumers),
                Client: parse.GetValue(client) == "dotnet" ? BenchClient.DotNet : BenchClient.Librdkafka));
            var result = await WithProgressAsync("consumed", parse.GetValue(Json), p => benchmark.RunAsync(p, ct));
            return Report(result, parse.GetValue(Json));
        });
        return command;
    }

    private static Command EndToEndCommand()
    {
        var rate = new Option<long>("--rate", "-r") { Description = "Offered records per second", DefaultValueFactory = _ => 10_000 };
        var duration = new Option<double>("--duration", "-d") { Description = "Seconds to measure", DefaultValueFactory = _ => 10 };
        var warmup = new Option<double>("--warmup") { Description = "Seconds excluded from the figures", DefaultValueFactory = _ => 2 };
        var acks = new Option<string>("--acks") { Description = "all, 1 or 0", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var linger = new Option<double>("--linger-ms") { Description = "Producer linger.ms", DefaultValueFactory = _ => 1 };
        var client = new Option<string>("--client") { Description = "librdkafka: its C API (measures the broker); dotnet: Confluent.Kafka's .NET producer and consumer", DefaultValueFactory = _ => "librdkafka" };
        client.AcceptOnlyFromAmong("librdkafka", "dotnet");
        var command = new Command("e2e", "End-to-end latency (produce to consume) at a fixed offered rate")
        {
            Topic, Partitions, Size, rate, duration, warmup, acks, linger, client, Json,
        };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var topic = parse.GetValue(Topic) ?? "bench-e2e";
            var partitions = await EnsureTopicAsync(parse, topic, parse.GetValue(Partitions));
            var options = new EndToEndBenchOptions(topic, partitions, parse.GetValue(rate), TimeSpan.FromSeconds(parse.GetValue(duration)),
                TimeSpan.FromSeconds(parse.GetValue(warmup)), parse.GetValue(Size), ParseAcks(parse.GetValue(acks)!), parse.GetValue(linger),
                parse.GetValue(client) == "dotnet" ? BenchClient.DotNet : BenchClient.Librdkafka);
            var benchmark = new EndToEndBenchmark(ClientOptions.ProducerConfig(parse), ClientOptions.ConsumerConfig(parse), options);
            var result = await WithProgressAsync("received", parse.GetValue(Json), p => benchmark.RunAsync(p, ct));
            return Report(result, parse.GetValue(Json));
        });
        return command;
    }

    private static Command RebalanceCommand()
    {
        var partitions = new Option<int>("--partitions", "-p") { Description = "Partitions (when the topic is created)", DefaultValueFactory = _ => 100 };
        var members = new Option<int>("--members", "-m") { Description = "Group size; the last member's join is timed", DefaultValueFactory = _ => 10 };
        var runs = new Option<int>("--runs") { Description = "Runs, each with a fresh group", DefaultValueFactory = _ => 3 };
        var heartbeat = new Option<int>("--heartbeat-interval-ms")
        {
            Description = "Client heartbeat.interval.ms (classic); with --protocol consumer the broker sets it, this only labels the result",
            DefaultValueFactory = _ => 3000,
        };
        var protocol = new Option<string>("--protocol") { Description = "eager (classic, range), cooperative (classic, cooperative-sticky) or consumer (KIP-848)", DefaultValueFactory = _ => "eager" };
        protocol.AcceptOnlyFromAmong("eager", "cooperative", "consumer");
        var command = new Command("rebalance", "Time from a member's join to a balanced assignment of the whole group")
        {
            Topic, partitions, members, runs, heartbeat, protocol, Json,
        };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var topic = parse.GetValue(Topic) ?? "bench-rebalance";
            var count = await EnsureTopicAsync(parse, topic, parse.GetValue(partitions));
            var options = new RebalanceBenchOptions(topic, count, parse.GetValue(members), parse.GetValue(runs), parse.GetValue(heartbeat),
                parse.GetValue(protocol) switch
                {
                    "cooperative" => RebalanceProtocol.ClassicCooperative,
                    "consumer" => RebalanceProtocol.Consumer,
                    _ => RebalanceProtocol.ClassicEager,
                });
            var benchmark = new RebalanceBenchmark(ClientOptions.ConsumerConfig(parse), options);
            var result = await benchmark.RunAsync(null, ct);
            return Report(result, parse.GetValue(Json));
        });
        return command;
    }

    /// <summary>Idle connections held open around the run, and the broker's resident memory before and after it.</summary>
    private static async Task<BenchResult> WithSurroundingsAsync(ParseResult parse, CancellationToken ct, Func<Task<BenchResult>> run)
    {
        var pid = parse.GetValue(ServerPid);
        var rssBefore = pid is { } p1 ? ProcessMemory.ResidentBytes(p1) : null;
        await using var idle = await IdleConnections.OpenAsync(parse.GetValue(ClientOptions.Brokers)!, parse.GetValue(Idle), ct);
        var result = await run();
        var settings = new Dictionary<string, string>(result.Settings);
        if (idle.Count > 0) settings["idle.connections"] = idle.Count.ToString(CultureInfo.InvariantCulture);
        if (rssBefore is { } before && pid is { } p2 && ProcessMemory.ResidentBytes(p2) is { } after)
        {
            settings["server.rss.start.mb"] = (before / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
            settings["server.rss.end.mb"] = (after / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
        }
        return result with { Settings = settings };
    }

    private static Acks ParseAcks(string acks) => acks switch { "0" => Acks.None, "1" => Acks.Leader, _ => Acks.All };

    /// <summary>Creates the topic when missing; returns its partition count.</summary>
    private static async Task<int> EnsureTopicAsync(ParseResult parse, string topic, int partitions)
    {
        using var admin = ClientOptions.Admin(parse);
        var existing = ClientOptions.Metadata(admin).Topics.SingleOrDefault(t => t.Topic == topic && !t.Error.IsError);
        if (existing is not null) return existing.Partitions.Count;
        try
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = -1 }]);
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code == ErrorCode.TopicAlreadyExists))
        {
        }
        return partitions;
    }

    private static async Task<BenchResult> WithProgressAsync(string verb, bool quiet, Func<IProgress<long>, Task<BenchResult>> run)
    {
        if (quiet || Console.IsErrorRedirected) return await run(new Progress<long>());
        BenchResult? result = null;
        await Terminal.Err.Status().StartAsync($"{verb} 0 records", async status =>
        {
            var started = DateTime.UtcNow;
            var progress = new Progress<long>(n =>
            {
                var seconds = Math.Max(0.001, (DateTime.UtcNow - started).TotalSeconds);
                status.Status($"{verb} {n:N0} records ({n / seconds:N0}/s)");
            });
            result = await run(progress);
        });
        return result!;
    }

    private static int Report(BenchResult result, bool json)
    {
        if (json)
        {
            Console.WriteLine(result.ToJson());
            return result.Errors > 0 ? 1 : 0;
        }
        var table = Terminal.NewTable("METRIC", "#VALUE");
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("mode", result.Mode);
        Row("brokers", result.Brokers);
        Row("topic", $"{result.Topic} ({result.Partitions} partitions)");
        if (result.Mode != "rebalance") // a rebalance run moves no records: its figures are in the settings rows
        {
            Row("record size", $"{result.RecordSize} B");
            Row("records", result.Records.ToString("N0", CultureInfo.InvariantCulture));
            Row("seconds", result.Seconds.ToString("F2", CultureInfo.InvariantCulture));
            Row("records/s", result.RecordsPerSecond.ToString("N0", CultureInfo.InvariantCulture));
            Row("MB/s", result.MegabytesPerSecond.ToString("F1", CultureInfo.InvariantCulture));
        }
        if (result.Latency is { } l)
        {
            Row("latency p50", $"{l.P50Ms:F3} ms");
            Row("latency p99", $"{l.P99Ms:F3} ms");
            Row("latency p99.9", $"{l.P999Ms:F3} ms");
            Row("latency max", $"{l.MaxMs:F3} ms");
        }
        foreach (var (name, value) in result.Settings) Row(name, value);
        if (result.Errors > 0) Row("errors", result.Errors.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        return result.Errors > 0 ? 1 : 0;
    }
}
