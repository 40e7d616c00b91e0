using System.Globalization;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Storage;

namespace Tributary.Broker;

/// <summary>
/// Typed view of the broker's Kafka-named settings, resolved once at start. Kafka's alternative spellings are honoured
/// (log.retention.ms over .minutes over .hours; log.roll.ms over log.roll.hours).
/// </summary>
public sealed class BrokerSettings
{
    private readonly Dictionary<string, string> _settings;

    public BrokerSettings(IReadOnlyDictionary<string, string> settings)
    {
        _settings = new Dictionary<string, string>(settings, StringComparer.Ordinal);
        NodeId = Int("node.id", Int("broker.id", 1));
        DefaultPartitions = Int("num.partitions", 1);
        AutoCreateTopics = Bool("auto.create.topics.enable", true);
        MaxRequestBytes = Int("socket.request.max.bytes", 100 * 1024 * 1024);
        RetentionCheckIntervalMs = Long("log.retention.check.interval.ms", 300_000);
        DeleteTopicEnable = Bool("delete.topic.enable", true);
        FlushPolicy = Get("log.flush.policy") switch
        {
            null or "durable" or "fsync" => FlushPolicy.Durable,
            "page-cache" or "pagecache" => FlushPolicy.PageCache,
            var other => throw new ArgumentException($"log.flush.policy must be 'durable' or 'page-cache', not '{other}'"),
        };
        MaxConnectionsInFlightPerConnection = Int("queued.max.requests.per.connection", 128);
        TopicLimits = TopicLimits.From(Get);
        Connections = ConnectionLimits.From(this);
        FetchMaxBytes = Int("fetch.max.bytes", 57_671_680);
        if (FetchMaxBytes < 1024) throw new ArgumentException($"fetch.max.bytes must be at least 1024, not {FetchMaxBytes}");
        Cleaner = new Tributary.Storage.Cleaning.CleanerOptions
        {
            Enabled = Bool("log.cleaner.enable", true),
            DedupeBufferSize = Long("log.cleaner.dedupe.buffer.size", 128L << 20),
            IoMaxBytesPerSecond = Get("log.cleaner.io.max.bytes.per.second") is { } rate ? double.Parse(rate, CultureInfo.InvariantCulture) : double.MaxValue,
            BackoffMs = Long("log.cleaner.backoff.ms", 15_000),
        };
        ValidateTopicDefaults();
    }

    public int NodeId { get; }
    public int DefaultPartitions { get; }
    public bool AutoCreateTopics { get; }
    public int MaxRequestBytes { get; }
    public long RetentionCheckIntervalMs { get; }
    public bool DeleteTopicEnable { get; }
    public FlushPolicy FlushPolicy { get; }
    public int MaxConnectionsInFlightPerConnection { get; }
    /// <summary>max.connections[.per.ip[.overrides]], connections.max.idle.ms, queued.max.request.bytes and Tributary's response budget.</summary>
    public ConnectionLimits Connections { get; }
    /// <summary>fetch.max.bytes (Kafka's default, 55 MiB): the most record bytes one fetch response carries, whatever the request asks.</summary>
    public int FetchMaxBytes { get; }
    /// <summary>log.cleaner.enable, log.cleaner.dedupe.buffer.size, log.cleaner.io.max.bytes.per.second, log.cleaner.backoff.ms.</summary>
    public Tributary.Storage.Cleaning.CleanerOptions Cleaner { get; }
    /// <summary>max.broker.partitions, controller.mutation.rate, controller.quota.window.*, log.max.open.files.</summary>
    public TopicLimits TopicLimits { get; }

    public string? Get(string name) => _settings.TryGetValue(name, out var v) ? v : null;

    public IReadOnlyDictionary<string, string> All => _settings;

    /// <summary>The broker-level default of a topic config, honouring Kafka's alternative spellings.</summary>
    public string TopicDefault(string topicConfig)
    {
        if (!TopicConfigDefinitions.TryGet(topicConfig, out var def)) throw new ArgumentException($"unknown topic config {topicConfig}");
        switch (topicConfig)
        {
            case "retention.ms":
                if (Get("log.retention.ms") is { } ms) return ms;
                if (Get("log.retention.minutes") is { } min) return (long.Parse(min, CultureInfo.InvariantCulture) * 60_000).ToString(CultureInfo.InvariantCulture);
                if (Get("log.retention.hours") is { } h) return (long.Parse(h, CultureInfo.InvariantCulture) * 3_600_000).ToString(CultureInfo.InvariantCulture);
                return def.Default;
            case "segment.ms":
                if (Get("log.roll.ms") is { } roll) return roll;
                if (Get("log.roll.hours") is { } rh) return (long.Parse(rh, CultureInfo.InvariantCulture) * 3_600_000).ToString(CultureInfo.InvariantCulture);
                return def.Default;
            default:
                return def.BrokerSetting is { } s && Get(s) is { } v ? v : def.Default;
        }
    }

    /// <summary>True when the broker setting behind a topic config was set explicitly (DescribeConfigs reports its source).</summary>
    public bool IsTopicDefaultOverridden(string topicConfig) =>
        TopicConfigDefinitions.TryGet(topicConfig, out var def) && def.BrokerSetting is { } s && _settings.ContainsKey(s);

    private void ValidateTopicDefaults()
    {
        foreach (var def in TopicConfigDefinitions.All)
        {
            var value = TopicDefault(def.Name);
            if (TopicConfigDefinitions.Validate(def.Name, value) is { } problem)
                throw new ArgumentException($"{def.BrokerSetting ?? def.Name}: {problem}");
        }
    }

    internal int Int(string name, int fallback) =>
        Get(name) is { } v ? int.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{v}'") : fallback;

    internal long Long(string name, long fallback) =>
        Get(name) is { } v ? long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{v}'") : fallback;

    private bool Bool(string name, bool fallback) =>
        Get(name) is { } v ? bool.TryParse(v, out var b) ? b : throw new ArgumentException($"{name} must be true or false, not '{v}'") : fallback;
}
