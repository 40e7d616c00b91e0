using System.CommandLine;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Spectre.Console;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Commands;

/// <summary><c>tributary topic …</c>: create, list, describe, delete topics and change their configuration.</summary>
public static class TopicCommands
{
    public static Command Create()
    {
        var topic = new Command("topic", "Create, list, describe, delete and configure topics")
        {
            CreateCommand(), ListCommand(), DescribeCommand(), DeleteCommand(), AlterConfigCommand(),
        };
        return topic.WithClientOptions();
    }

    private static Command CreateCommand()
    {
        var names = new Argument<string[]>("name") { Description = "Topic name(s)", Arity = ArgumentArity.OneOrMore };
        var partitions = new Option<int?>("--partitions", "-p") { Description = "Number of partitions [default: the broker's num.partitions]" };
        var replicas = new Option<short?>("--replicas", "-r") { Description = "Replication factor [default: the broker's default.replication.factor]" };
        var configs = new Option<string[]>("--config", "-c") { Description = "Topic config name=value (repeatable), e.g. -c cleanup.policy=compact" };
        var validateOnly = new Option<bool>("--validate-only") { Description = "Ask the broker to validate the request without creating anything" };
        var command = new Command("create", "Create topics") { names, partitions, replicas, configs, validateOnly };
        command.SetGuardedAction(async (parse, _) =>
        {
            var topicConfigs = Assignments.ParseAll(parse.GetValue(configs), "--config");
            var specs = parse.GetValue(names)!.Select(name => new TopicSpecification
            {
                Name = name,
                NumPartitions = parse.GetValue(partitions) ?? -1, // -1 asks the broker for its default
                ReplicationFactor = parse.GetValue(replicas) ?? -1,
                Configs = topicConfigs.Count == 0 ? null : new Dictionary<string, string>(topicConfigs),
            }).ToList();
            var validate = parse.GetValue(validateOnly);
            using var admin = ClientOptions.Admin(parse);
            List<CreateTopicReport> reports;
            try
            {
                await admin.CreateTopicsAsync(specs, new CreateTopicsOptions { ValidateOnly = validate, RequestTimeout = ClientOptions.Timeout });
                reports = specs.Select(s => new CreateTopicReport { Topic = s.Name, Error = new Error(ErrorCode.NoError) }).ToList();
            }
            catch (CreateTopicsException e)
            {
                reports = e.Results;
            }
            return PrintResults(reports.Select(r => (r.Topic, r.Error)), validate ? "valid" : "created");
        });
        return command;
    }

    private static Command ListCommand()
    {
        var showInternal = new Option<bool>("--internal", "-i") { Description = "Include internal topics (names starting with __)" };
        var command = new Command("list", "List topics") { showInternal };
        command.Aliases.Add("ls");
        command.SetGuardedAction((parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            var metadata = ClientOptions.Metadata(admin);
            var table = Terminal.NewTable("NAME", "#PARTITIONS", "#REPLICAS", "INTERNAL");
            foreach (var topic in metadata.Topics.OrderBy(t => t.Topic, StringComparer.Ordinal))
            {
                var isInternal = IsInternal(topic.Topic);
                if (isInternal && !parse.GetValue(showInternal))
                {
                    continue;
                }
                var replicas = topic.Partitions.Count == 0 ? 0 : topic.Partitions.Max(p => p.Replicas.Length);
                table.AddText(topic.Topic, topic.Partitions.Count.ToString(), replicas.ToString(), isInternal ? "yes" : "no");
            }
            Terminal.Write(table);
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Kafka reserves the double-underscore prefix for internal topics; Confluent.Kafka's metadata does not carry the flag.</summary>
    private static bool IsInternal(string topic) => topic.StartsWith("__", StringComparison.Ordinal);

    private static Command DescribeCommand()
    {
        var name = new Argument<string>("name") { Description = "Topic name" };
        var all = new Option<bool>("--all-configs", "-a") { Description = "Show every config, not only those set explicitly" };
        var command = new Command("describe", "Show a topic's configuration and partitions") { name, all };
        command.SetGuardedAction(async (parse, _) =>
        {
            var topicName = parse.GetValue(name)!;
            using var admin = ClientOptions.Admin(parse);
            var topic = ClientOptions.Topic(admin, topicName);
            // As kafka-topics --describe --unavailable-partitions judges them: a replica on a broker the cluster does not list is offline.
            var live = ClientOptions.Metadata(admin).Brokers.Select(b => b.BrokerId).ToHashSet();

            var configTable = Terminal.NewTable("CONFIG", "VALUE", "SOURCE");
            foreach (var entry in (await DescribeConfigs(admin, topicName)).OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                if (!parse.GetValue(all) && entry.Source is ConfigSource.DefaultConfig or ConfigSource.StaticBrokerConfig)
                {
                    continue;
                }
                configTable.AddText(entry.Name, entry.IsSensitive ? "(sensitive)" : entry.Value, SourceName(entry.Source));
            }

            using var consumer = new ConsumerBuilder<Ignore, Ignore>(ClientOptions.ConsumerConfig(parse))
                .SetLogHandler(ClientOptions.Log).Build();
            var partitionTable = Terminal.NewTable("#PARTITION", "#LEADER", "REPLICAS", "ISR", "OFFLINE", "#LOG-START", "#HIGH-WATERMARK", "#RECORDS");
            foreach (var partition in topic.Partitions.OrderBy(p => p.PartitionId))
            {
                // A partition without a leader has no watermarks to ask for; its row says so instead of failing the command.
                var marks = partition.Leader >= 0 ? consumer.QueryWatermarkOffsets(new TopicPartition(topicName, partition.PartitionId), ClientOptions.Timeout) : null;
                partitionTable.AddText(
                    partition.PartitionId.ToString(),
                    partition.Leader >= 0 ? partition.Leader.ToString() : "none",
                    string.Join(",", partition.Replicas),
                    string.Join(",", partition.InSyncReplicas),
                    string.Join(",", partition.Replicas.Where(r => !live.Contains(r))),
                    marks?.Low.Value.ToString() ?? "-",
                    marks?.High.Value.ToString() ?? "-",
                    marks is null ? "-" : (marks.High.Value - marks.Low.Value).ToString());
            }

            var storageTable = await StorageTable(admin, topic, topicName);

            Terminal.Heading($"{topicName}: {topic.Partitions.Count} partition(s)");
            if (configTable.Rows.Count > 0)
            {
                Terminal.Write(configTable);
            }
            else
            {
                Terminal.Note(parse.GetValue(all) ? "no configs reported" : "no configs set on the topic (--all-configs shows defaults)");
            }
            Terminal.Write(partitionTable);
            if (storageTable is not null)
            {
                Terminal.Write(storageTable);
            }

            return 0;
        });
        return command;
    }

    /// <summary>
    /// Size on disk per partition from DescribeLogDirs, asked of each partition's leader; against Tributary also the log
    /// start/end, segment count and, for compacted topics, the dirty ratio and last clean time (extension tags, see
    /// DescribeLogDirsTags). Null, with a note, when the brokers do not answer DescribeLogDirs v4.
    /// </summary>
    private static async Task<Table?> StorageTable(IAdminClient admin, TopicMetadata topic, string topicName)
    {
        var infos = new Dictionary<int, PartitionLogInfo>();
        try
        {
            var brokers = ClientOptions.Metadata(admin).Brokers.ToDictionary(b => b.BrokerId);
            foreach (var byLeader in topic.Partitions.GroupBy(p => p.Leader))
            {
                if (!brokers.TryGetValue(byLeader.Key, out var broker))
                {
                    continue;
                }

                foreach (var (partition, info) in await LogDirsClient.DescribeAsync(broker.Host, broker.Port, topicName, byLeader.Select(p => p.PartitionId), ClientOptions.Timeout))
                {
                    infos[partition] = info;
                }
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or InvalidOperationException or Tributary.Protocol.Wire.ProtocolException)
        {
            Terminal.Note($"storage details unavailable (DescribeLogDirs v4): {e.Message}");
            return null;
        }

        var table = Terminal.NewTable("#PARTITION", "#SIZE-BYTES", "#SEGMENTS", "#LOG-START", "#LOG-END", "DIRTY-RATIO", "LAST-CLEAN");
        foreach (var info in infos.Values.OrderBy(i => i.Partition))
        {
            table.AddText(
                info.Partition.ToString(),
                info.SizeBytes.ToString(),
                info.SegmentCount?.ToString() ?? "-",
                info.LogStartOffset?.ToString() ?? "-",
                info.LogEndOffset?.ToString() ?? "-",
                info.DirtyRatio is { } ratio ? ratio.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture) : "-",
                info.LastCleanTimeMs is > 0 and var ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("u", System.Globalization.CultureInfo.InvariantCulture) : info.DirtyRatio is null ? "-" : "never");
        }

        return table;
    }

    /// <summary>The topic's configs; a broker that cannot describe them costs the config table, not the whole command.</summary>
    private static async Task<IEnumerable<ConfigEntryResult>> DescribeConfigs(IAdminClient admin, string topic)
    {
        try
        {
            var results = await admin.DescribeConfigsAsync(
                [new ConfigResource { Type = ResourceType.Topic, Name = topic }],
                new DescribeConfigsOptions { RequestTimeout = ClientOptions.Timeout });
            return results.SelectMany(r => r.Entries.Values);
        }
        catch (KafkaException e)
        {
            Terminal.Warn($"configs unavailable: {ErrorHandling.Describe(e)}");
            return [];
        }
    }

    private static string SourceName(ConfigSource source) => source switch
    {
        ConfigSource.DynamicTopicConfig => "topic",
        ConfigSource.DynamicBrokerConfig => "dynamic broker",
        ConfigSource.DynamicDefaultBrokerConfig => "dynamic default",
        ConfigSource.StaticBrokerConfig => "broker",
        ConfigSource.DefaultConfig => "default",
        _ => source.ToString(),
    };

    private static Command DeleteCommand()
    {
        var names = new Argument<string[]>("name") { Description = "Topic name(s)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete topics") { names };
        command.Aliases.Add("rm");
        command.SetGuardedAction(async (parse, _) =>
        {
            var topics = parse.GetValue(names)!;
            using var admin = ClientOptions.Admin(parse);
            List<(string, Error)> results;
            try
            {
                await admin.DeleteTopicsAsync(topics, new DeleteTopicsOptions { RequestTimeout = ClientOptions.Timeout });
                results = topics.Select(t => (t, new Error(ErrorCode.NoError))).ToList();
            }
            catch (DeleteTopicsException e)
            {
                results = e.Results.Select(r => (r.Topic, r.Error)).ToList();
            }
            return PrintResults(results, "deleted");
        });
        return command;
    }

    private static Command AlterConfigCommand()
    {
        var name = new Argument<string>("name") { Description = "Topic name" };
        var set = new Option<string[]>("--set", "-s") { Description = "Config name=value to set (repeatable)" };
        var delete = new Option<string[]>("--delete", "-d") { Description = "Config name to reset to its default (repeatable)" };
        var validateOnly = new Option<bool>("--validate-only") { Description = "Ask the broker to validate the change without applying it" };
        var command = new Command("alter-config", "Set or reset topic configs (incremental, other configs are untouched)") { name, set, delete, validateOnly };
        command.SetGuardedAction(async (parse, _) =>
        {
            var topicName = parse.GetValue(name)!;
            var entries = Assignments.ParseAll(parse.GetValue(set), "--set")
                .Select(kv => new ConfigEntry { Name = kv.Key, Value = kv.Value, IncrementalOperation = AlterConfigOpType.Set })
                .Concat((parse.GetValue(delete) ?? []).Select(n => new ConfigEntry { Name = n, Value = "", IncrementalOperation = AlterConfigOpType.Delete }))
                .ToList();
            if (entries.Count == 0)
            {
                throw new CliException("nothing to change: give --set name=value or --delete name");
            }
            using var admin = ClientOptions.Admin(parse);
            var resource = new ConfigResource { Type = ResourceType.Topic, Name = topicName };
            try
            {
                await admin.IncrementalAlterConfigsAsync(
                    new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = entries },
                    new IncrementalAlterConfigsOptions { RequestTimeout = ClientOptions.Timeout, ValidateOnly = parse.GetValue(validateOnly) });
            }
            catch (IncrementalAlterConfigsException e) when (e.Results.FirstOrDefault(r => r.Error.IsError) is { } failed)
            {
                throw new CliException($"{topicName}: {ErrorHandling.Describe(failed.Error)}");
            }
            foreach (var entry in entries)
            {
                Terminal.Success(entry.IncrementalOperation == AlterConfigOpType.Set
                    ? $"{topicName}: {entry.Name}={entry.Value}"
                    : $"{topicName}: {entry.Name} reset to default");
            }
            return 0;
        });
        return command;
    }

    /// <summary>One row per topic; the command fails if any topic failed.</summary>
    private static int PrintResults(IEnumerable<(string Topic, Error Error)> results, string successWord)
    {
        var table = Terminal.NewTable("TOPIC", "STATUS");
        var failed = false;
        foreach (var (topic, error) in results)
        {
            failed |= error.IsError;
            table.AddRow(
                new Text(topic),
                error.IsError ? new Markup($"[red]{Markup.Escape(ErrorHandling.Describe(error))}[/]") : new Markup($"[green]{successWord}[/]"));
        }
        Terminal.Write(table);
        return failed ? ErrorHandling.Failure : 0;
    }
}
