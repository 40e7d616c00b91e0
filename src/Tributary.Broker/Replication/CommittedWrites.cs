using Tributary.Protocol.Messages;

namespace Tributary.Broker.Replication;

/// <summary>A coordinator's write to a replicated internal partition counts once the high watermark passed it.</summary>
internal static class CommittedWrites
{
    /// <summary>How long a coordinator write waits for its followers before it fails (then the request is retried).</summary>
    private const int TimeoutMs = 30_000;

    public static async Task WaitAsync(ReplicaManager? replicas, string topic, int partition, long offsetExclusive)
    {
        if (replicas is null) return;
        var error = await replicas.WaitForReplicationAsync(topic, partition, offsetExclusive, minInSync: 1, TimeoutMs, CancellationToken.None).ConfigureAwait(false);
        if (error != ErrorCode.None)
            throw new Tributary.Storage.StorageException(Tributary.Storage.StorageError.StorageFailure,
                $"{topic}-{partition}: the write was not replicated ({error}); this broker may no longer lead it.");
    }
}
