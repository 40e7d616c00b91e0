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

    public static TransactionSettings From(BrokerSettings settings) => new(
        StatePartitions: settings.Int("transaction.state.log.num.partitions"),
        MaxTimeoutMs: settings.Int("transaction.max.timeout.ms"),
        AbortCheckIntervalMs: settings.Int("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
        TransactionalIdExpirationMs: settings.Long("transactional.id.expiration.ms"),
        ProducerIdExpirationMs: settings.Long("producer.id.expiration.ms"));
}
