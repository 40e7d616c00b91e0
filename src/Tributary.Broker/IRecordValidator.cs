namespace Tributary.Broker;

/// <summary>
/// The broker's validation seam: checks the records produced to a topic that asks for it (Confluent's
/// <c>confluent.value.schema.validation</c> / <c>confluent.key.schema.validation</c> topic configs) before they are
/// appended. The host supplies it (the schema registry's validator); the broker knows nothing of the registry and
/// reads the configs itself (<see cref="RecordValidation.Parts"/>), so the validator is told only what to check.
/// </summary>
public interface IRecordValidator
{
    /// <returns>Null when the batches may be appended, else the reason (naming the record) they may not.</returns>
    string? Validate(string topic, ValidatedParts parts, ReadOnlyMemory<byte> batches);

    /// <summary>
    /// True while what the validator checks against may lack something already committed elsewhere (a registry on a
    /// broker that follows <c>_schemas</c> and has not applied all of it yet): a batch it refuses now is answered with a
    /// retriable error, so the producer tries again instead of losing records to a moment of lag.
    /// </summary>
    bool IsCatchingUp => false;
}

/// <summary>Which parts of a topic's records must carry a registered schema id.</summary>
public readonly record struct ValidatedParts(bool Keys, bool Values)
{
    public bool Any => Keys || Values;
}

/// <summary>The topic configs that turn record validation on.</summary>
public static class RecordValidation
{
    public const string ValueConfig = "confluent.value.schema.validation";
    public const string KeyConfig = "confluent.key.schema.validation";

    /// <summary>What a topic's configs ask to be validated.</summary>
    public static ValidatedParts Parts(IReadOnlyDictionary<string, string> topicConfigs) => new(IsOn(topicConfigs, KeyConfig), IsOn(topicConfigs, ValueConfig));

    private static bool IsOn(IReadOnlyDictionary<string, string> configs, string name) =>
        configs.TryGetValue(name, out var v) && string.Equals(v.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}
