using Tributary.Broker;
using Tributary.Coordination;
using Tributary.SchemaRegistry;
using Tributary.SchemaRegistry.Validation;

namespace Tributary.Server;

/// <summary>
/// The schema registry runs inside the broker process, on its own HTTP listener, storing its history in the
/// compacted internal topic <c>_schemas</c> (one partition, as Confluent's). Settings:
/// <c>schema.registry.enable</c> (default true), <c>schema.registry.listeners</c> (default http://0.0.0.0:8081;
/// ephemeral servers use a free loopback port) and <c>schema.compatibility.level</c> (default BACKWARD).
/// A registry that cannot bind its port, or whose log cannot be replayed, is logged and left off (Failed), so the broker
/// still serves Kafka and topics with schema validation refuse records.
/// </summary>
public sealed partial class TributaryServer
{
    public const string SchemaRegistryEnableSetting = "schema.registry.enable";
    public const string SchemaRegistryListenersSetting = "schema.registry.listeners";
    public const string SchemaCompatibilitySetting = "schema.compatibility.level";
    public const string SchemasTopic = Tributary.Broker.Metadata.InternalTopics.SchemasTopic;

    private SchemaRegistryServer? _schemaRegistry;
    private SchemaStore? _schemaStore;

    /// <summary>Base URL of the schema registry (http://host:port), or null when it is disabled.</summary>
    public string? SchemaRegistryUrl => _schemaRegistry?.Url;

    /// <summary>The registry's state; null when it is disabled.</summary>
    public SchemaStore? Schemas => _schemaRegistry?.Store;

    private static async Task<TributaryServer> WithSchemaRegistryAsync(Task<TributaryServer> starting, CancellationToken cancellationToken)
    {
        var server = await starting.ConfigureAwait(false);
        var settings = server.State.Settings;
        // The status is Starting from the broker's start (BrokerState), so no produce slips past validation meanwhile.
        if (server.State.SchemaRegistryStatus == SchemaRegistryStatus.Disabled)
            return server;
        var listeners = settings.Text(SchemaRegistryListenersSetting);
        // Checked against the settings table at start.
        CompatibilityLevels.TryParse(settings.Text(SchemaCompatibilitySetting), out var level);
        try
        {
            var partition = server.State.Topics.GetOrCreateInternalPartition(SchemasTopic, 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, 0)
                ?? throw new InvalidOperationException($"{SchemasTopic}-0 has no replica on broker {server.State.NodeId}; this broker cannot serve the registry.");
            var log = new PartitionCoordinatorLog(() => partition, () => partition);
            var store = server._schemaStore = await SchemaStore.OpenAsync(log, level, report: server.State.Log.Coordinator, time: server.State.Time)
                .ConfigureAwait(false);
            server._schemaRegistry = await SchemaRegistryServer.StartAsync(store, listeners, server.State.Identity.ClusterId, cancellationToken).ConfigureAwait(false);
            server.State.SchemaValidator = new SchemaRegistryRecordValidator(new RecordSchemaValidator(store));
            server.State.SchemaRegistryStatus = SchemaRegistryStatus.Running;
            server.State.Log.Info($"schema registry listening on {server._schemaRegistry.Url}");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException or UriFormatException)
        {
            server.State.SchemaRegistryStatus = SchemaRegistryStatus.Failed;
            server.State.Log.Error($"schema registry not started on {listeners}: {e.Message}");
            await server.CloseSchemaStoreAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await server.CloseSchemaStoreAsync().ConfigureAwait(false);
            throw;
        }
        return server;
    }

    private async Task CloseSchemaStoreAsync()
    {
        if (_schemaStore is not { } opened) return;
        _schemaStore = null;
        await opened.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The HTTP server first (no new writes), then the store's writer, before the partitions close.</summary>
    private async Task StopSchemaRegistryAsync()
    {
        if (_schemaRegistry is { } registry) await registry.DisposeAsync().ConfigureAwait(false);
        if (_schemaStore is { } store) await store.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The schema registry's validator behind the broker's validation seam.</summary>
internal sealed class SchemaRegistryRecordValidator(RecordSchemaValidator validator) : IRecordValidator
{
    public string? Validate(string topic, ValidatedParts parts, ReadOnlyMemory<byte> batches) =>
        validator.Validate(topic, parts.Keys, parts.Values, batches);
}
