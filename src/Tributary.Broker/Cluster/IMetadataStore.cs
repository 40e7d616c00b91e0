namespace Tributary.Broker.Cluster;

/// <summary>
/// Where the cluster's metadata is kept: a local file on a broker that runs alone (the embedded default), or etcd for
/// a cluster. Both publish the same <see cref="MetadataImage"/>; writes are conditional (compare-and-swap) so a change
/// computed from a stale image fails instead of overwriting a newer one.
/// </summary>
public interface IMetadataStore : IAsyncDisposable
{
    MetadataImage Image { get; }

    /// <summary>Raised after every new image, in order, with the previous and the new image, on one thread at a time.</summary>
    event Action<MetadataImage, MetadataImage>? Published;

    /// <summary>This broker's node id.</summary>
    int NodeId { get; }

    /// <summary>Registers this broker (its endpoint known once the listener is bound) and starts taking part in the cluster.</summary>
    Task RegisterAsync(BrokerRegistration registration, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces this broker's registration with <paramref name="change"/> of it (same node and incarnation): an endpoint
    /// that is bound after the broker registered, such as its schema registry's URL. Returns once the image holds it.
    /// </summary>
    Task UpdateRegistrationAsync(Func<BrokerRegistration, BrokerRegistration> change, CancellationToken cancellationToken);

    /// <summary>
    /// Kafka's controlled shutdown: marks this broker as shutting down, so the controller moves the leaderships it holds
    /// to other in-sync replicas (and takes it out of the ISR) before it stops. A broker alone has nowhere to move them.
    /// </summary>
    Task BeginShutdownAsync(CancellationToken cancellationToken);

    /// <summary>Creates a topic; false when one with that name exists. Returns once this broker's image holds it.</summary>
    Task<bool> CreateTopicAsync(TopicInfo topic, CancellationToken cancellationToken);

    /// <summary>Deletes a topic; false when it does not exist. Returns once this broker's image no longer holds it.</summary>
    Task<bool> DeleteTopicAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces a topic's configs or adds partitions (<paramref name="updated"/> has the same id as the current one):
    /// false when the topic changed or went away since <paramref name="current"/> was read.
    /// </summary>
    Task<bool> UpdateTopicAsync(TopicInfo current, TopicInfo updated, CancellationToken cancellationToken);

    /// <summary>
    /// Changes one partition's leadership or ISR (Kafka's AlterPartition): applied only when the stored state is still
    /// <paramref name="current"/>; <paramref name="next"/> must carry the next partition epoch.
    /// </summary>
    /// <param name="asController">The controller's change (an election): applied only while this broker still is the
    /// active controller, so a deposed controller's decisions fail instead of overwriting its successor's.</param>
    Task<bool> AlterPartitionAsync(string topic, Guid topicId, int partition, PartitionState current, PartitionState next, bool asController,
        CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the dynamic configs of one broker resource (a node id, or "" for the cluster-wide default; an empty set
    /// removes them): false when they changed since <paramref name="current"/> (the image's value; null for none) was read.
    /// </summary>
    Task<bool> UpdateBrokerConfigsAsync(string resource, IReadOnlyDictionary<string, string>? current, IReadOnlyDictionary<string, string> updated,
        CancellationToken cancellationToken);

    /// <summary>
    /// Sets (a credential) or removes (null) SCRAM credentials of users (AlterUserScramCredentials), all at once; returns
    /// once this broker's image holds them.
    /// </summary>
    Task UpdateScramCredentialsAsync(IReadOnlyList<(string User, string Mechanism, Security.ScramCredential? Credential)> changes, CancellationToken cancellationToken);

    /// <summary>
    /// Adds the ACLs in <paramref name="add"/> (one already stored stays once) and removes those in
    /// <paramref name="remove"/> (one not stored is ignored), durably, as one change. Returns once this broker's image
    /// holds it.
    /// </summary>
    Task ChangeAclsAsync(IReadOnlyCollection<Security.AclBinding> add, IReadOnlyCollection<Security.AclBinding> remove, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the quotas of client-quota entities (AlterClientQuotas; an empty set removes the entity), all at once;
    /// returns once this broker's image holds them.
    /// </summary>
    Task UpdateClientQuotasAsync(IReadOnlyList<(string Entity, IReadOnlyDictionary<string, double> Quotas)> changes, CancellationToken cancellationToken);

    /// <summary>True while this broker is the active controller.</summary>
    bool IsController { get; }

    /// <summary>Reserves a block of <paramref name="size"/> producer ids unique in the cluster; returns the first.</summary>
    Task<long> AllocateProducerIdsAsync(int size, CancellationToken cancellationToken);
}
