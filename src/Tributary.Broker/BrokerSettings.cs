using System.Globalization;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Storage;

namespace Tributary.Broker;

/// <summary>
/// Typed view of the broker's Kafka-named settings, resolved once at start. Every value given is checked against
/// <see cref="BrokerSettingDefinitions"/> first, so a bad one stops start-up with one line naming it; names the table
/// does not know are kept in <see cref="UnknownNames"/> for the broker to warn about. Defaults come from the table.
/// Kafka's alternative spellings are honoured (log.retention.ms over .minutes over .hours; log.roll.ms over
/// log.roll.hours; node.id over broker.id).
/// </summary>
public sealed class BrokerSettings
{
    private readonly Dictionary<string, string> _settings;

    /// <summary>
    /// How this broker connects to the others: the inter-broker listener's TLS and SASL, or null when it is PLAINTEXT
    /// (resolved at start from the listeners, so it is not one of the values above).
    /// </summary>
    internal Network.InterBrokerSecurity? InterBroker { get; set; }

    /// <exception cref="ArgumentException">A setting's value does not suit it; the message names the setting.</exception>
    public BrokerSettings(IReadOnlyDictionary<string, string> settings)
    {
        _settings = new Dictionary<string, string>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (var (name, value) in settings)
        {
            var trimmed = value.Trim();
            _settings[name] = trimmed;
            if (!BrokerSettingDefinitions.TryGet(name, out var definition)) unknown.Add(name);
            else if (BrokerSettingDefinitions.Check(definition, trimmed) is { } problem) throw new ArgumentException($"{name}: invalid value '{value}': {problem}");
        }
        UnknownNames = unknown;
        NodeId = Get("node.id") is not null || Get("broker.id") is null ? Int("node.id") : Int("broker.id");
        DefaultPartitions = Int("num.partitions");
        AutoCreateTopics = Bool("auto.create.topics.enable");
        MaxRequestBytes = Int("socket.request.max.bytes");
        RetentionCheckIntervalMs = Long("log.retention.check.interval.ms");
        DeleteTopicEnable = Bool("delete.topic.enable");
        FlushPolicy = Text("log.flush.policy").ToLowerInvariant() is "durable" or "fsync" ? FlushPolicy.Durable : FlushPolicy.PageCache;
        MaxConnectionsInFlightPerConnection = Int("queued.max.requests.per.connection");
        TopicLimits = TopicLimits.From(this);
        Connections = ConnectionLimits.From(this);
        FetchMaxBytes = Int("fetch.max.bytes");
        Cleaner = new Tributary.Storage.Cleaning.CleanerOptions
        {
            Enabled = Bool("log.cleaner.enable"),
            DedupeBufferSize = Long("log.cleaner.dedupe.buffer.size"),
            IoMaxBytesPerSecond = Get("log.cleaner.io.max.bytes.per.second") is { } rate ? double.Parse(rate, CultureInfo.InvariantCulture) : double.MaxValue,
            BackoffMs = Long("log.cleaner.backoff.ms"),
        };
        ValidateTopicDefaults();
    }

    /// <summary>Names given that no broker setting has (Kafka: "supplied but isn't a known config"); warned about at start.</summary>
    public IReadOnlyList<string> UnknownNames { get; }

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

    /// <summary>The value given or the table's default (values given were checked at start, so parsing cannot fail).</summary>
    internal string Text(string name) => Get(name) ?? BrokerSettingDefinitions.Get(name).Default ?? throw new InvalidOperationException($"{name} has no default");

    internal int Int(string name) => int.Parse(Text(name), NumberStyles.Integer, CultureInfo.InvariantCulture);

    internal long Long(string name) => long.Parse(Text(name), NumberStyles.Integer, CultureInfo.InvariantCulture);

    internal double Double(string name) => double.Parse(Text(name), NumberStyles.Float, CultureInfo.InvariantCulture);

    internal bool Bool(string name) => bool.Parse(Text(name));

    /// <summary>For settings whose default is computed: null when not given.</summary>
    internal int? IntOrNull(string name) => Get(name) is { } v ? int.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) : null;
}
