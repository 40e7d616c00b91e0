using System.Globalization;

namespace Tributary.Broker.Transactions;

/// <summary>The transaction coordinator's broker settings, under Kafka's names and with Kafka's defaults.</summary>
public sealed record TransactionSettings(
    int StatePartitions,
    int MaxTimeoutMs,
    int AbortCheckIntervalMs,
    long TransactionalIdExpirationMs,
    long ProducerIdExpirationMs)
{
    public const string StateTopic = "__transaction_state";

    public static TransactionSettings From(BrokerSettings settings)
    {
        long Long(string name, long fallback) =>
            settings.Get(name) is { } v
                ? long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{v}'")
                : fallback;
        return new TransactionSettings(
            StatePartitions: (int)Math.Max(1, Long("transaction.state.log.num.partitions", 50)),
            MaxTimeoutMs: (int)Long("transaction.max.timeout.ms", 900_000),
            AbortCheckIntervalMs: (int)Math.Max(10, Long("transaction.abort.timed.out.transaction.cleanup.interval.ms", 10_000)),
            TransactionalIdExpirationMs: Long("transactional.id.expiration.ms", 604_800_000),
            ProducerIdExpirationMs: Long("producer.id.expiration.ms", 86_400_000));
    }
}
