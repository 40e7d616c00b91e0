using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tributary.Broker.Security;

/// <summary>
/// The stored form of ACLs (the local store's <c>acls.json</c>, one etcd value per binding): JSON with Kafka's enum
/// names as strings, so the files read as kafka-acls prints them.
/// </summary>
internal static class AclJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public static byte[] Write(IEnumerable<AclBinding> acls) => JsonSerializer.SerializeToUtf8Bytes(acls.ToList(), Options);

    public static List<AclBinding> Read(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize<List<AclBinding>>(json, Options) ?? [];

    public static byte[] WriteOne(AclBinding acl) => JsonSerializer.SerializeToUtf8Bytes(acl, Options);

    /// <exception cref="JsonException">Not a stored binding.</exception>
    public static AclBinding? ReadOne(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize<AclBinding>(json, Options);
}
