using Tributary.Broker.Metadata;
using Tributary.Coordination;

namespace Tributary.Broker.Cluster;

/// <summary>
/// Moves a coordinator's shards with the leadership of its internal topic's partitions, as Kafka loads a coordinator
/// partition when its broker becomes the leader and unloads it when it stops being one: after every metadata image, a
/// partition led here (with its log online) is loaded, one led elsewhere is unloaded (its requests then answer
/// NOT_COORDINATOR and clients look the coordinator up again). Before the topic exists every shard is loaded and the
/// first write creates it; the first image with the topic then settles which shards stay.
/// </summary>
public static class CoordinatorLeadership
{
    public static void Follow<TShard>(TopicCatalog topics, string topic, CoordinatorRuntime<TShard> runtime, BrokerLog log)
        where TShard : class, ICoordinatorShard
    {
        topics.Store.Published += (previous, image) =>
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
