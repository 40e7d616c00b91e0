using System.Text;
using Tributary.Broker.Cluster;

namespace Tributary.Broker.Tests;

/// <summary>
/// What the metadata stores keep of a reassignment and of dynamic broker configs, and that values written before
/// reassignments existed still read (as a partition with none in progress).
/// </summary>
public sealed class MetadataStoreFormatTests
{
    [Fact]
    public void APartitionStoredBeforeReassignmentsReadsAsNoneInProgress()
    {
        var old = Encoding.UTF8.GetBytes("""{"replicas":[1,2],"isr":[2],"leader":2,"leaderEpoch":3,"partitionEpoch":9}""");
        var state = EtcdMetadataStore.DecodePartition(old)!;
        Assert.Equal([1, 2], state.Replicas);
        Assert.Equal([2], state.Isr);
        Assert.Equal(2, state.Leader);
        Assert.Equal(3, state.LeaderEpoch);
        Assert.Equal(9, state.PartitionEpoch);
        Assert.Empty(state.AddingReplicas);
        Assert.Empty(state.RemovingReplicas);
        Assert.False(state.IsReassigning);
    }

    [Fact]
    public void AReassignmentInProgressRoundTripsAndNoneWritesTheOldFormat()
    {
        var moving = new PartitionState([2, 3, 1], [1, 2], 1, 4, 8) { AddingReplicas = [3], RemovingReplicas = [1] };
        Assert.True(EtcdMetadataStore.DecodePartition(EtcdMetadataStore.EncodePartition(moving))!.SameAs(moving));

        var settled = new PartitionState([2, 3], [2, 3], 2, 5, 9);
        var json = Encoding.UTF8.GetString(EtcdMetadataStore.EncodePartition(settled));
        Assert.Equal("""{"replicas":[2,3],"isr":[2,3],"leader":2,"leaderEpoch":5,"partitionEpoch":9}""", json);
    }

    [Fact]
    public async Task ALoneBrokerKeepsItsDynamicConfigsAcrossARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tributary-local-store-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var store = new LocalMetadataStore(dir, "cluster", 1);
            Assert.Null(store.Image.DynamicBrokerConfig(1, "leader.replication.throttled.rate"));
            Assert.True(await store.UpdateBrokerConfigsAsync("", null, new Dictionary<string, string> { ["leader.replication.throttled.rate"] = "100" }, default));
            Assert.Equal("100", store.Image.DynamicBrokerConfig(1, "leader.replication.throttled.rate"));
            // A broker's own value wins over the cluster default; a stale read loses the compare-and-swap.
            Assert.True(await store.UpdateBrokerConfigsAsync("1", null, new Dictionary<string, string> { ["leader.replication.throttled.rate"] = "200" }, default));
            Assert.False(await store.UpdateBrokerConfigsAsync("1", null, new Dictionary<string, string>(), default));
            Assert.Equal("200", store.Image.DynamicBrokerConfig(1, "leader.replication.throttled.rate"));

            var reopened = new LocalMetadataStore(dir, "cluster", 1);
            Assert.Equal("200", reopened.Image.DynamicBrokerConfig(1, "leader.replication.throttled.rate"));
            Assert.Equal("100", reopened.Image.DynamicBrokerConfig(2, "leader.replication.throttled.rate"));
            Assert.True(await reopened.UpdateBrokerConfigsAsync("1", reopened.Image.BrokerConfigs["1"], new Dictionary<string, string>(), default));
            Assert.Equal("100", reopened.Image.DynamicBrokerConfig(1, "leader.replication.throttled.rate"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
