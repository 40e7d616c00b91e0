using Confluent.Kafka;
using Confluent.Kafka.Admin;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>A broker alone (local metadata) answers the reassignment APIs as a cluster of one: nothing can move.</summary>
public sealed class SingleBrokerReassignmentTests
{
    [Fact]
    public async Task OnlyTheCurrentAssignmentIsValidAndNothingIsInProgress()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["schema.registry.enable"] = "false" });
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = "alone", NumPartitions = 1, ReplicationFactor = 1 }]);
        var before = broker.State.Topics.Image.Partition("alone", 0)!;

        var same = await ClusterReassignmentTests.AlterAsync(broker.BootstrapServers, "alone", 0, [1]);
        Assert.Equal(0, same.Responses[0].Partitions[0].ErrorCode);
        var elsewhere = await ClusterReassignmentTests.AlterAsync(broker.BootstrapServers, "alone", 0, [2]);
        Assert.Equal((short)KafkaErrorCode.InvalidReplicaAssignment, elsewhere.Responses[0].Partitions[0].ErrorCode);
        var cancel = await ClusterReassignmentTests.AlterAsync(broker.BootstrapServers, "alone", 0, null);
        Assert.Equal((short)KafkaErrorCode.NoReassignmentInProgress, cancel.Responses[0].Partitions[0].ErrorCode);

        Assert.Empty((await ClusterReassignmentTests.ListAsync(broker.BootstrapServers)).Topics);
        Assert.True(broker.State.Topics.Image.Partition("alone", 0)!.SameAs(before));
    }
}
