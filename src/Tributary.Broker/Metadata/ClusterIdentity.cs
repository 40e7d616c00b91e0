using System.Buffers.Text;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The cluster id and node id of a data directory, kept in <c>meta.properties</c> as Kafka does, so a directory is
/// never served under a different identity by mistake.
/// </summary>
public sealed record ClusterIdentity(string ClusterId, int NodeId)
{
    public static ClusterIdentity LoadOrCreate(string dataDir, int nodeId)
    {
        var path = Path.Combine(dataDir, "meta.properties");
        if (File.Exists(path))
        {
            var values = File.ReadAllLines(path)
                .Where(l => l.Contains('=') && !l.StartsWith('#'))
                .Select(l => l.Split('=', 2))
                .ToDictionary(p => p[0].Trim(), p => p[1].Trim());
            if (values.TryGetValue("cluster.id", out var id)) return new ClusterIdentity(id, nodeId);
        }
        // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).
        var clusterId = Base64Url.EncodeToString(Guid.NewGuid().ToByteArray());
        File.WriteAllText(path, $"#Tributary\nversion=1\ncluster.id={clusterId}\nnode.id={nodeId}\n");
        return new ClusterIdentity(clusterId, nodeId);
    }
}
