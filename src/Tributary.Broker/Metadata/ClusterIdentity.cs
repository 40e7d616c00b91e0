using System.Buffers.Text;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The cluster id and node id of a data directory, kept in <c>meta.properties</c> as Kafka does, so a directory is
/// never served under a different identity by mistake.
/// </summary>
public sealed record ClusterIdentity(string ClusterId, int NodeId)
{
    /// <param name="clusterIdIfNew">The id a fresh directory takes (the cluster's, from the metadata store); null for a new one.</param>
    public static ClusterIdentity LoadOrCreate(string dataDir, int nodeId, string? clusterIdIfNew = null)
    {
        if (StoredClusterId(dataDir) is { } id) return new ClusterIdentity(id, nodeId);
        var clusterId = clusterIdIfNew ?? NewClusterId();
        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), $"#Tributary\nversion=1\ncluster.id={clusterId}\nnode.id={nodeId}\n");
        return new ClusterIdentity(clusterId, nodeId);
    }

    /// <summary>Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).</summary>
    public static string NewClusterId() => Base64Url.EncodeToString(Guid.NewGuid().ToByteArray());

    /// <summary>The cluster id in the directory's meta.properties; null for a fresh directory.</summary>
    public static string? StoredClusterId(string dataDir)
    {
        var path = Path.Combine(dataDir, "meta.properties");
        if (!File.Exists(path)) return null;
        var values = File.ReadAllLines(path)
            .Where(l => l.Contains('=') && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0].Trim(), p => p[1].Trim());
        return values.GetValueOrDefault("cluster.id");
    }

    /// <summary>
    /// As Kafka writes meta.properties to every log directory: writes this identity to <paramref name="logDir"/>, or checks
    /// the one already there, refusing (InvalidOperationException) a directory of another cluster or node, which would
    /// otherwise be served as this broker's.
    /// </summary>
    public void EnsureIn(string logDir)
    {
        var path = Path.Combine(logDir, "meta.properties");
        if (File.Exists(path))
        {
            var values = File.ReadAllLines(path)
                .Where(l => l.Contains('=') && !l.StartsWith('#'))
                .Select(l => l.Split('=', 2))
                .ToDictionary(p => p[0].Trim(), p => p[1].Trim());
            if (values.TryGetValue("cluster.id", out var id) && id != ClusterId)
                throw new InvalidOperationException($"The log directory {logDir} belongs to cluster {id}, not {ClusterId} (meta.properties); log.dirs mixes clusters.");
            if (values.TryGetValue("node.id", out var node) && node != NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture))
                throw new InvalidOperationException($"The log directory {logDir} belongs to node {node}, not {NodeId} (meta.properties); log.dirs mixes brokers.");
            if (id is not null) return;
        }
        File.WriteAllText(path, $"#Tributary\nversion=1\ncluster.id={ClusterId}\nnode.id={NodeId}\n");
    }
}
