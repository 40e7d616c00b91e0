namespace Tributary.Broker.Transactions;

/// <summary>The transaction coordinator's broker settings, under Kafka's names and with Kafka's defaults.</summary>
public sealed record TransactionSettings(
    int StatePartitions,
    int MaxTimeoutMs,
    int AbortCheckIntervalMs,
    long TransactionalIdExpirationMs,
    long ProducerIdExpirationMs,
    short TransactionVersion = 2)
{
    /// <summary>Transaction version 2 (KIP-890 part 2) is finalized: the requests that ask for it get it.</summary>
    public bool Version2 => TransactionVersion >= 2;

    public const string StateTopic = "__transaction_state";

    public static TransactionSettings From(BrokerSettings settings) => new(
        StatePartitions: settings.Int("transaction.state.log.num.partitions"),
        MaxTimeoutMs: settings.Int("transaction.max.timeout.ms"),
        AbortCheckIntervalMs: settings.Int("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
        TransactionalIdExpirationMs: settings.Long("transactional.id.expiration.ms"),
        ProducerIdExpirationMs: settings.Long("producer.id.expiration.ms"),
        TransactionVersion: (short)settings.Int("transaction.version"));
}
