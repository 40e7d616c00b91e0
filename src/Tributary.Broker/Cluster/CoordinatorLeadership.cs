using Tributary.Broker.Metadata;
using Tributary.Coordination;

namespace Tributary.Broker.Cluster;

/// <summary>
/// Moves a coordinator's shards with the leadership of its internal topic's partitions, as Kafka loads a coordinator
/// partition when its broker becomes the leader and unloads it when it stops being one: after every metadata image, a
/// partition led here (with its log online) is loaded, one led elsewhere is unloaded (its requests then answer
/// NOT_COORDINATOR and clients look the coordinator up again). Before the topic exists nothing changes: the group and
/// transaction coordinators load every shard then (the first write creates the topic, and the first image with it
/// settles which shards stay), the schema registry none (its first write creates <c>_schemas</c> and waits for a leader).
/// </summary>
public static class CoordinatorLeadership
{
    /// <returns>Stops following (a coordinator that goes away before the broker does).</returns>
    public static IDisposable Follow(TopicCatalog topics, string topic, CoordinatorRuntimeCore runtime, BrokerLog log)
    {
        Action<MetadataImage, MetadataImage> follow = (previous, image) =>
        {
            if (image.TopicsByName.GetValueOrDefault(topic) is not { } info) return;
            for (var p = 0; p < info.PartitionCount; p++)
            {
                var leadsHere = info.Partitions[p].Leader == topics.NodeId && topics.GetPartition(topic, p) is not null && !topics.IsPartitionOffline(topic, p);
                var loaded = runtime.StatusOf(p) != ShardStatus.NotLoaded;
                if (leadsHere && !loaded) _ = runtime.Load(p);
                else if (!leadsHere && loaded) Report(runtime.UnloadAsync(p), topic, p, log);
            }
        };
        topics.Store.Published += follow;
        return new Unsubscribe(() => topics.Store.Published -= follow);
    }

    private sealed class Unsubscribe(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    private static async void Report(Task unload, string topic, int partition, BrokerLog log)
    {
        try
        {
            await unload.ConfigureAwait(false);
            log.Info($"coordinator: {topic}-{partition} is led by another broker now; its shard is unloaded.");
        }
        catch (Exception e)
        {
            log.Error($"coordinator: unloading {topic}-{partition} failed: {e.Message}");
        }
    }
}
