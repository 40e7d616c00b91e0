using Tributary.Protocol.Messages;

namespace Tributary.Broker.Metadata;

/// <summary>
/// Changes topic configs for AlterConfigs (replace the whole set) and IncrementalAlterConfigs (SET, DELETE, APPEND,
/// SUBTRACT per key). Validates everything before changing anything. On a BROKER resource (a node id, or "" for the
/// cluster-wide default) only the settings marked dynamic in <see cref="BrokerSettingDefinitions"/> change (the
/// replication throttle rates); the rest are static, set at start, and refused as Kafka refuses them.
/// </summary>
public sealed class TopicConfigChanger(BrokerState broker)
{
    public const sbyte TopicResource = 2, BrokerResource = 4;
    public const sbyte Set = 0, Delete = 1, Append = 2, Subtract = 3;

    public readonly record struct Change(string Name, sbyte Operation, string? Value);

    public async Task<(ErrorCode Error, string? Message)> ApplyAsync(sbyte resourceType, string resourceName, IReadOnlyList<Change> changes, bool incremental, bool validateOnly)
    {
        if (resourceType == BrokerResource)
            return await ApplyBrokerAsync(resourceName, changes, incremental, validateOnly).ConfigureAwait(false);
        if (resourceType != TopicResource)
            return (ErrorCode.InvalidRequest, $"Unsupported resource type {resourceType}.");
        var topic = broker.Topics.Get(resourceName);
        if (topic is null) return (ErrorCode.UnknownTopicOrPartition, $"Topic '{resourceName}' does not exist.");
        var configs = incremental ? new Dictionary<string, string>(topic.Configs, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            if (!seen.Add(change.Name)) return (ErrorCode.InvalidRequest, $"Config {change.Name} is named more than once.");
            if (!TopicConfigDefinitions.TryGet(change.Name, out _)) return (ErrorCode.InvalidConfig, $"Unknown topic config name: {change.Name}");
            switch (change.Operation)
            {
                case Set:
                    if (change.Value is null)
                    {
                        // Classic AlterConfigs: a null value resets to the default.
                        if (!incremental) continue;
                        return (ErrorCode.InvalidRequest, $"Null value not supported for SET of {change.Name}.");
                    }
                    configs[change.Name] = change.Value.Trim();
                    break;
                case Delete:
                    configs.Remove(change.Name);
                    break;
                case Append or Subtract when change.Name == "cleanup.policy":
                    var current = (configs.TryGetValue(change.Name, out var v) ? v : broker.Settings.TopicDefault(change.Name))
                        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                    var items = (change.Value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (change.Operation == Append) current.AddRange(items.Where(i => !current.Contains(i)));
                    else current.RemoveAll(items.Contains);
                    configs[change.Name] = string.Join(",", current);
                    break;
                case Append or Subtract:
                    return (ErrorCode.InvalidConfig, $"Config {change.Name} is not a list; APPEND and SUBTRACT apply to list configs only.");
                default:
                    return (ErrorCode.InvalidRequest, $"Unknown config operation {change.Operation}.");
            }
            if (configs.TryGetValue(change.Name, out var value) && TopicConfigDefinitions.Validate(change.Name, value) is { } problem)
                return (ErrorCode.InvalidConfig, problem);
        }
        if (InternalTopics.ConfigProblem(topic, configs, broker.Settings.TopicDefault) is { } broken) return (ErrorCode.PolicyViolation, broken);
        if (!validateOnly) await broker.Topics.ReplaceConfigsAsync(resourceName, configs).ConfigureAwait(false);
        return (ErrorCode.None, null);
    }

    private async Task<(ErrorCode Error, string? Message)> ApplyBrokerAsync(string resource, IReadOnlyList<Change> changes, bool incremental, bool validateOnly)
    {
        if (resource.Length > 0 && !(int.TryParse(resource, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id >= 0))
            return (ErrorCode.InvalidRequest, $"Invalid broker name {resource}: a node id, or empty for the cluster-wide default.");
        // Compare-and-swap on what was read: a concurrent change of the same broker's configs makes this one start over.
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var current = broker.Topics.Image.BrokerConfigs.GetValueOrDefault(resource);
            var configs = incremental && current is not null ? new Dictionary<string, string>(current, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var change in changes)
            {
                if (!seen.Add(change.Name)) return (ErrorCode.InvalidRequest, $"Config {change.Name} is named more than once.");
                if (!BrokerSettingDefinitions.TryGet(change.Name, out var definition)) return (ErrorCode.InvalidConfig, $"Unknown config name: {change.Name}");
                if (!definition.Dynamic)
                    return (ErrorCode.InvalidConfig, $"Cannot update these configs dynamically: {change.Name} (set it in the config file or with --set and restart).");
                switch (change.Operation)
                {
                    case Set when change.Value is null:
                        if (!incremental) continue;
                        return (ErrorCode.InvalidRequest, $"Null value not supported for SET of {change.Name}.");
                    case Set:
                        if (BrokerSettingDefinitions.Check(definition, change.Value) is { } problem)
                            return (ErrorCode.InvalidConfig, $"Invalid value {change.Value} for configuration {change.Name}: {problem}");
                        configs[change.Name] = change.Value.Trim();
                        break;
                    case Delete:
                        configs.Remove(change.Name);
                        break;
                    case Append:
                        return (ErrorCode.InvalidConfig, $"Config value append is not allowed for config key: {change.Name}");
                    case Subtract:
                        return (ErrorCode.InvalidConfig, $"Config value subtract is not allowed for config key: {change.Name}");
                    default:
                        return (ErrorCode.InvalidRequest, $"Unknown config operation {change.Operation}.");
                }
            }
            if (validateOnly) return (ErrorCode.None, null);
            if (await broker.Topics.Store.UpdateBrokerConfigsAsync(resource, current, configs, CancellationToken.None).ConfigureAwait(false))
            {
                broker.Log.Info($"configs: broker {(resource.Length == 0 ? "default" : resource)} dynamic configs now {{{string.Join(", ", configs.Select(kv => kv.Key + "=" + kv.Value))}}}.");
                return (ErrorCode.None, null);
            }
        }
        return (ErrorCode.UnknownServerError, $"The configs of broker {resource} kept changing under this request; try again.");
    }
}
