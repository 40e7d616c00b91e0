using Tributary.Broker.Cluster;

namespace Tributary.Broker.Tests;

/// <summary>What clients are told from the metadata image.</summary>
public sealed class MetadataImageTests
{
    private static readonly BrokerRegistration[] TwoBrokers =
        [new(1, "127.0.0.1", 9092, null, Guid.NewGuid()), new(2, "127.0.0.1", 9093, null, Guid.NewGuid())];

    [Fact]
    public void The_controller_clients_are_told_is_always_a_registered_broker()
    {
        // Found in CI: a two-broker cluster answered Metadata before its controller was elected (controller -1), and
        // librdkafka's admin client waited 60 s for a controller without asking again.
        Assert.Equal(2, new MetadataImage("c", 2, 1, TwoBrokers, []).ControllerFor(1));
        Assert.Equal(1, new MetadataImage("c", -1, 1, TwoBrokers, []).ControllerFor(1));
        // A controller whose own registration this image does not hold yet is no broker a client can reach.
        Assert.Equal(2, new MetadataImage("c", 3, 1, TwoBrokers, []).ControllerFor(2));
        // An answering broker missing from its own image (its lease lapsed; it registers again) names a listed one, and
        // with no broker listed -1 makes librdkafka ask again.
        Assert.Equal(1, new MetadataImage("c", 3, 1, TwoBrokers, []).ControllerFor(3));
        Assert.Equal(-1, new MetadataImage("c", 3, 1, [], []).ControllerFor(3));
    }
}
