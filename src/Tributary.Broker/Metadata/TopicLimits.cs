namespace Tributary.Broker.Metadata;

/// <summary>
/// Limits on creating and deleting partitions, so no client can make the broker hold more partitions than it can
/// serve, or churn them faster than it can.
/// <list type="bullet">
/// <item><c>max.broker.partitions</c> (default 4000, the partitions-per-broker figure Kafka's operators plan with;
/// the name is KIP-578's): a creation that would bring the broker above it is refused with POLICY_VIOLATION, whatever
/// the API (CreateTopics, CreatePartitions, auto-creation by Metadata or Produce). Internal topics are not refused.</item>
/// <item><c>controller.mutation.rate</c> (default 200 partitions/s per client id): the default of Kafka's
/// <c>controller_mutation_rate</c> client quota (KIP-599), which Kafka leaves unlimited unless set; with Kafka's
/// window settings <c>controller.quota.window.num</c> (11) and <c>controller.quota.window.size.seconds</c> (1)
/// a client may burst rate × num × size partitions. 0 or less disables it.</item>
/// <item><c>log.max.open.files</c> (default half of what <c>ulimit -n</c> leaves beyond the runtime's 384): segment files kept open at most (Tributary's).</item>
/// </list>
/// </summary>
public sealed record TopicLimits(int MaxBrokerPartitions, double MutationRate, int QuotaWindowNum, int QuotaWindowSizeSeconds, int MaxOpenFiles)
{
    public static TopicLimits From(BrokerSettings settings) => new(
        settings.Int("max.broker.partitions"),
        settings.Double("controller.mutation.rate"),
        settings.Int("controller.quota.window.num"),
        settings.Int("controller.quota.window.size.seconds"),
        settings.IntOrNull("log.max.open.files") ?? 0);
}
