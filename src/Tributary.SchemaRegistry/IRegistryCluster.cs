namespace Tributary.SchemaRegistry;

/// <summary>
/// What a registry that runs on one broker of a cluster must know of the others; the host supplies it (a broker alone
/// has none, and answers everything itself). One registry takes writes, the one on the leader of <c>_schemas</c>-0;
/// every other forwards writes to it, as Confluent's followers forward to their primary.
/// </summary>
public interface IRegistryCluster
{
    /// <summary>This broker's node id (a forwarded request names it).</summary>
    int NodeId { get; }

    /// <summary>
    /// True when reads may be answered from this registry's state: <c>_schemas</c> does not exist yet (nothing was ever
    /// registered), or the state is current with it (it follows an in-sync replica here, or, without a replica, the
    /// leader's log over Fetch). Otherwise reads go to the leader.
    /// </summary>
    bool ServesReads { get; }

    /// <summary>Creates <c>_schemas</c> unless it exists: the first write creates it, as FindCoordinator creates <c>__consumer_offsets</c>.</summary>
    Task EnsureTopicAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The registry that takes writes now: this one (its writer loaded) or another broker's (by URL). Waits up to
    /// <paramref name="wait"/> for one (an election, a writer loading, a registration without its URL yet); null if none.
    /// </summary>
    Task<RegistryLeader?> FindLeaderAsync(TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary>The registry that takes writes: on broker <paramref name="NodeId"/>, at <paramref name="Url"/> (null: this one).</summary>
public sealed record RegistryLeader(int NodeId, string? Url)
{
    public bool IsLocal => Url is null;
}
