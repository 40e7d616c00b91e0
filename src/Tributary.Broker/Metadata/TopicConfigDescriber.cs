namespace Tributary.Broker.Metadata;

/// <summary>One config as DescribeConfigs reports it, with Kafka's source codes and types.</summary>
public sealed record DescribedConfig(string Name, string? Value, bool ReadOnly, sbyte Source, bool Sensitive, sbyte Type, IReadOnlyList<(string Name, string? Value, sbyte Source)> Synonyms, string? Documentation = null)
{
    public bool IsDefault => Source == ConfigSources.Default;
}

public static class ConfigSources
{
    public const sbyte Topic = 1;
    public const sbyte DynamicBroker = 2;
    public const sbyte DynamicDefaultBroker = 3;
    public const sbyte StaticBroker = 4;
    public const sbyte Default = 5;
}

/// <summary>Kafka's ConfigType codes, for DescribeConfigs v3+.</summary>
public static class ConfigTypes
{
    public const sbyte Boolean = 1, String = 2, Int = 3, Long = 5, Double = 6, List = 7, Password = 9;

    public static sbyte Of(string name, string defaultValue) => name switch
    {
        "cleanup.policy" or "leader.replication.throttled.replicas" or "follower.replication.throttled.replicas" => List,
        "min.cleanable.dirty.ratio" => Double,
        "index.interval.bytes" or "max.message.bytes" or "min.insync.replicas" or "segment.bytes" or "segment.index.bytes"
            or "num.partitions" or "socket.request.max.bytes" or "node.id" or "broker.id" or "message.max.bytes" => Int,
        _ when defaultValue is "true" or "false" => Boolean,
        _ when long.TryParse(defaultValue, out _) => Long,
        _ => String,
    };
}

/// <summary>Describes topic configs (overrides plus inherited defaults) and broker configs, with synonyms.</summary>
public sealed class TopicConfigDescriber(BrokerSettings settings)
{
    /// <summary>Every topic config: the topic's override where there is one, else the broker's default.</summary>
    public IEnumerable<DescribedConfig> Describe(IReadOnlyDictionary<string, string> overrides, bool includeSynonyms)
    {
        foreach (var def in TopicConfigDefinitions.All)
        {
            var brokerValue = settings.TopicDefault(def.Name);
            var brokerSource = settings.IsTopicDefaultOverridden(def.Name) ? ConfigSources.StaticBroker : ConfigSources.Default;
            var synonyms = new List<(string, string?, sbyte)>();
            string value;
            sbyte source;
            if (overrides.TryGetValue(def.Name, out var topicValue))
            {
                value = topicValue;
                source = ConfigSources.Topic;
                if (includeSynonyms) synonyms.Add((def.Name, topicValue, ConfigSources.Topic));
            }
            else
            {
                value = brokerValue;
                source = brokerSource;
            }
            if (includeSynonyms)
            {
                if (brokerSource == ConfigSources.StaticBroker && def.BrokerSetting is { } bs) synonyms.Add((bs, brokerValue, ConfigSources.StaticBroker));
                synonyms.Add((def.BrokerSetting ?? def.Name, def.Default, ConfigSources.Default));
            }
            yield return new DescribedConfig(def.Name, value, false, source, def.Sensitive, ConfigTypes.Of(def.Name, def.Default), synonyms, def.Doc);
        }
    }

    /// <summary>
    /// Every broker setting of <see cref="BrokerSettingDefinitions"/> with the value in effect: for a dynamic one, this
    /// broker's dynamic value, else the cluster default's (from <paramref name="image"/>); then the one given at start,
    /// else the default, else the value computed at start (node.id, max.connections, log.max.open.files). Settings that
    /// only stand in for another (log.retention.hours, ...) are null unless given. Only dynamic settings are writable.
    /// </summary>
    public IEnumerable<DescribedConfig> DescribeBroker(Cluster.MetadataImage? image = null)
    {
        var own = image?.BrokerConfigs.GetValueOrDefault(settings.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var defaults = image?.BrokerConfigs.GetValueOrDefault("");
        foreach (var def in BrokerSettingDefinitions.All)
        {
            if (def.Dynamic && own?.GetValueOrDefault(def.Name) is { } mine)
            {
                yield return new DescribedConfig(def.Name, mine, false, ConfigSources.DynamicBroker, false, TypeCode(def.Type), [], def.Doc);
                continue;
            }
            if (def.Dynamic && defaults?.GetValueOrDefault(def.Name) is { } shared)
            {
                yield return new DescribedConfig(def.Name, shared, false, ConfigSources.DynamicDefaultBroker, false, TypeCode(def.Type), [], def.Doc);
                continue;
            }
            var given = settings.Get(def.Name);
            var value = given ?? def.Name switch
            {
                "node.id" or "broker.id" => settings.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "max.connections" => settings.Connections.MaxConnections.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "log.max.open.files" when settings.TopicLimits.MaxOpenFiles > 0 => settings.TopicLimits.MaxOpenFiles.ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => def.Default,
            };
            var source = given is not null ? ConfigSources.StaticBroker : ConfigSources.Default;
            yield return new DescribedConfig(def.Name, value, !def.Dynamic, source, def.Type == BrokerSettingDefinitions.SettingType.Password, TypeCode(def.Type), [], def.Doc);
        }
    }

    private static sbyte TypeCode(BrokerSettingDefinitions.SettingType type) => type switch
    {
        BrokerSettingDefinitions.SettingType.Boolean => ConfigTypes.Boolean,
        BrokerSettingDefinitions.SettingType.Int => ConfigTypes.Int,
        BrokerSettingDefinitions.SettingType.Long => ConfigTypes.Long,
        BrokerSettingDefinitions.SettingType.Double => ConfigTypes.Double,
        BrokerSettingDefinitions.SettingType.List => ConfigTypes.List,
        BrokerSettingDefinitions.SettingType.Password => ConfigTypes.Password,
        _ => ConfigTypes.String,
    };
}
