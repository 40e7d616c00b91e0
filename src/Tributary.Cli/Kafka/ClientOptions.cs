using System.CommandLine;
using Confluent.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Kafka;

/// <summary>
/// The options every client command shares (where the cluster is, raw librdkafka settings), and the
/// factories that turn them into Confluent.Kafka clients. Commands speak plain Kafka, so they work
/// against any Kafka-compatible cluster, not only Tributary.
/// </summary>
public static class ClientOptions
{
    public const string BrokersVariable = "TRIBUTARY_BROKERS";

    public static readonly Option<string> Brokers = new("--brokers", "-b")
    {
        Description = $"Comma-separated bootstrap servers (env {BrokersVariable})",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(BrokersVariable) is { Length: > 0 } env ? env : "localhost:9092",
        Recursive = true,
    };

    public static readonly Option<string[]> ClientConfig = new("--client-config", "-X")
    {
        Description = "librdkafka client property name=value (repeatable), e.g. -X security.protocol=SSL",
        Recursive = true,
    };

    public static readonly Option<string?> CommandConfig = new("--command-config")
    {
        Description = "A properties file of client settings (security.protocol, sasl.*, ssl.*, ...), as Kafka's tools take; -X wins",
        Recursive = true,
    };

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Adds the shared options to a command; they are recursive, so adding them to a group covers its subcommands.</summary>
    public static T WithClientOptions<T>(this T command) where T : Command
    {
        command.Options.Add(Brokers);
        command.Options.Add(ClientConfig);
        command.Options.Add(CommandConfig);
        return command;
    }

    private static void Apply(ClientConfig config, ParseResult parse)
    {
        config.BootstrapServers = parse.GetValue(Brokers);
        config.ClientId = "tributary-cli";
        config.SocketConnectionSetupTimeoutMs = 10_000;
        if (parse.GetValue(CommandConfig) is { } file)
        {
            if (!File.Exists(file)) throw new CliException($"--command-config: {file} does not exist");
            foreach (var (name, value) in Tributary.Broker.BrokerConfig.ParseProperties(File.ReadAllText(file))) config.Set(name, value);
        }
        foreach (var (name, value) in Assignments.ParseAll(parse.GetValue(ClientConfig), "--client-config"))
        {
            config.Set(name, value);
        }
    }

    public static IAdminClient Admin(ParseResult parse)
    {
        var config = new AdminClientConfig();
        Apply(config, parse);
        return new AdminClientBuilder(config).SetLogHandler(Log).Build();
    }

    public static ProducerConfig ProducerConfig(ParseResult parse)
    {
        var config = new ProducerConfig();
        Apply(config, parse);
        return config;
    }

    /// <summary>
    /// Confluent.Kafka insists on a group.id even for consumers that only assign partitions; such a
    /// consumer gets a throwaway one, never joins the group and never commits.
    /// </summary>
    public static ConsumerConfig ConsumerConfig(ParseResult parse, string? groupId = null)
    {
        var config = new ConsumerConfig
        {
            GroupId = groupId ?? $"tributary-cli-{Environment.ProcessId}",
            EnableAutoCommit = groupId is not null,
            // Once the local queue holds queued.min.messages, librdkafka pauses fetching for this long
            // (default 1 s); with small records that idles the consumer most of the time (3.5x slower
            // than kcat on 2 M records of 7 B).
            FetchQueueBackoffMs = 10,
        };
        Apply(config, parse);
        return config;
    }

    /// <summary>
    /// librdkafka logs every failed connection attempt; those retries are noise for a CLI whose
    /// requests fail with a clear error anyway. Only TRIBUTARY_DEBUG shows them.
    /// </summary>
    public static void Log<TClient>(TClient client, LogMessage message)
    {
        Terminal.Debug($"{message.Level} {message.Facility}: {message.Message}");
    }

    /// <summary>Metadata for all topics, with unreachable brokers reported as a failure rather than an empty cluster.</summary>
    public static Metadata Metadata(IAdminClient admin)
    {
        var metadata = admin.GetMetadata(Timeout);
        if (metadata.Brokers.Count == 0)
        {
            throw new CliException("no brokers in the cluster metadata");
        }
        return metadata;
    }

    /// <summary>
    /// The partitions of a topic; an unknown topic is an error, not an empty list. Asks for all topics
    /// because a request naming the topic would let a broker with auto.create.topics.enable create it.
    /// </summary>
    public static TopicMetadata Topic(IAdminClient admin, string topic)
    {
        var metadata = Metadata(admin).Topics.SingleOrDefault(t => t.Topic == topic);
        if (metadata is null || metadata.Error.Code == ErrorCode.UnknownTopicOrPart)
        {
            throw new CliException($"topic '{topic}' does not exist");
        }
        if (metadata.Error.IsError)
        {
            throw new CliException($"topic '{topic}': {ErrorHandling.Describe(metadata.Error)}");
        }
        return metadata;
    }
}
