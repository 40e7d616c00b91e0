using Tributary.Protocol.Messages;

namespace Tributary.Broker.Metadata;

/// <summary>
/// Changes topic configs for AlterConfigs (replace the whole set) and IncrementalAlterConfigs (SET, DELETE, APPEND,
/// SUBTRACT per key). Validates everything before changing anything; broker configs are static (set at start).
/// </summary>
public sealed class TopicConfigChanger(BrokerState broker)
{
    public const sbyte TopicResource = 2, BrokerResource = 4;
    public const sbyte Set = 0, Delete = 1, Append = 2, Subtract = 3;

    public readonly record struct Change(string Name, sbyte Operation, string? Value);

    public async Task<(ErrorCode Error, string? Message)> ApplyAsync(sbyte resourceType, string resourceName, IReadOnlyList<Change> changes, bool incremental, bool validateOnly)
    {
        if (resourceType == BrokerResource)
            return (ErrorCode.InvalidRequest, "Broker configs are static in Tributary: set them in the config file or with --set and restart.");
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
}
