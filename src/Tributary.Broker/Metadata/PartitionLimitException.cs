namespace Tributary.Broker.Metadata;

/// <summary>A creation refused because the broker would hold more partitions than max.broker.partitions.</summary>
public sealed class PartitionLimitException(int current, int requested, int limit)
    : Exception($"Creating {requested} partition(s) would bring this broker to {(long)current + requested} partitions, above max.broker.partitions={limit} (it holds {current}).");
