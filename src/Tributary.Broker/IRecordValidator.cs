namespace Tributary.Broker;

/// <summary>
/// The broker's validation seam: checks the records produced to a topic that asks for it (Confluent's
/// <c>confluent.value.schema.validation</c> / <c>confluent.key.schema.validation</c> topic configs) before they are
/// appended. The host supplies it (the schema registry's validator); the broker knows nothing of the registry.
/// </summary>
public interface IRecordValidator
{
    /// <returns>Null when the batches may be appended, else the reason (naming the record) they may not.</returns>
    string? Validate(string topic, IReadOnlyDictionary<string, string> topicConfigs, ReadOnlyMemory<byte> batches);
}

/// <summary>The topic configs that turn record validation on.</summary>
public static class RecordValidation
{
    public const string ValueConfig = "confluent.value.schema.validation";
    public const string KeyConfig = "confluent.key.schema.validation";

    /// <summary>Whether a topic's configs ask for its keys or values to be validated.</summary>
    public static bool IsRequired(IReadOnlyDictionary<string, string> topicConfigs) => IsOn(topicConfigs, ValueConfig) || IsOn(topicConfigs, KeyConfig);

    private static bool IsOn(IReadOnlyDictionary<string, string> configs, string name) =>
        configs.TryGetValue(name, out var v) && string.Equals(v.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}
