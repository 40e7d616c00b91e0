using Tributary.Broker;
using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>A broker's topic catalog on its local metadata store, and the one-broker shorthands the tests use.</summary>
internal static class LocalCatalog
{
    public static TopicCatalog Open(string dataDir, LogManager logs, BrokerSettings settings)
    {
        var store = new LocalMetadataStore(dataDir, "test-cluster", settings.NodeId);
        var catalog = new TopicCatalog(store, logs, settings);
        store.RegisterAsync(new BrokerRegistration(settings.NodeId, "localhost", 9092, null, Guid.NewGuid()), CancellationToken.None).GetAwaiter().GetResult();
        return catalog;
    }

    /// <summary>Creates a topic whose partitions all live on this broker; null when it exists.</summary>
    public static TopicInfo? Create(this TopicCatalog catalog, string name, int partitions, IReadOnlyDictionary<string, string> configs) =>
        catalog.CreateAsync(name, [.. Enumerable.Range(0, partitions).Select(_ => new[] { catalog.NodeId })], configs).GetAwaiter().GetResult();

    public static bool Delete(this TopicCatalog catalog, string name) => catalog.DeleteAsync(name).GetAwaiter().GetResult();
}
