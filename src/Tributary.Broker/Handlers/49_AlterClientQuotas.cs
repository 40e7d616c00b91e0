using System.Net;
using Tributary.Broker.Network;
using Tributary.Broker.Quotas;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AlterClientQuotas v0-1 (KIP-546): sets and removes quotas of user / client-id entities (a null name is the default
/// entity) and of ip entities (KIP-612: <c>connection_creation_rate</c>, alone) in the cluster metadata, where every
/// broker applies them. Kafka's checks per entry: each type once; ip never with user or client-id; the keys of the
/// entity's kind; values above zero, whole numbers for the byte and connection rates. An entry with an error changes
/// nothing; validate_only checks and changes nothing. Needs ALTER_CONFIGS on the cluster.
/// </summary>
internal sealed class AlterClientQuotasHandler(BrokerState broker) : ApiHandler<AlterClientQuotasRequest, AlterClientQuotasResponse>
{
    public override ApiKey Key => ApiKey.AlterClientQuotas;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override async ValueTask<AlterClientQuotasResponse?> HandleAsync(RequestContext context, AlterClientQuotasRequest request)
    {
        var allowed = context.AllowsCluster(AclOperation.AlterConfigs);
        var image = broker.Topics.Image;
        var response = new AlterClientQuotasResponse();
        var changes = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        foreach (var entry in request.Entries)
        {
            var result = new AlterClientQuotasResponse.EntryData
            {
                Entity = [.. entry.Entity.Select(e => new AlterClientQuotasResponse.EntityData { EntityType = e.EntityType, EntityName = e.EntityName })],
            };
            response.Entries.Add(result);
            var (error, message, entity) = allowed ? Check(entry) : (ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.", null);
            if (error != ErrorCode.None)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)error, message);
                continue;
            }
            if (!changes.TryGetValue(entity!.Key, out var values))
                changes[entity.Key] = values = image.ClientQuotas.TryGetValue(entity.Key, out var current) ? new(current, StringComparer.Ordinal) : new(StringComparer.Ordinal);
            foreach (var op in entry.Ops)
            {
                if (op.Remove) values.Remove(op.Key);
                else values[op.Key] = op.Value;
            }
        }
        if (!request.ValidateOnly && changes.Count > 0)
            await broker.Topics.Store.UpdateClientQuotasAsync([.. changes.Select(c => (c.Key, (IReadOnlyDictionary<string, double>)c.Value))], context.Cancellation)
                .ConfigureAwait(false);
        return response;
    }

    /// <summary>Quota keys whose values are whole numbers (Kafka declares them LONG or INT).</summary>
    private static readonly HashSet<string> IntegralKeys = ["producer_byte_rate", "consumer_byte_rate", QuotaEntity.ConnectionCreationRate];

    /// <summary>Kafka's checks and messages (ClientQuotaControlManager), in its order.</summary>
    private static (ErrorCode, string?, QuotaEntity?) Check(AlterClientQuotasRequest.EntryData entry)
    {
        if (entry.Entity.Count == 0) return (ErrorCode.InvalidRequest, "Invalid empty client quota entity", null);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entry.Entity)
        {
            if (!seen.Add(e.EntityType)) return (ErrorCode.InvalidRequest, $"Invalid client quota entity, duplicate entity entry {e.EntityType}", null);
            if (e.EntityType is not (QuotaEntity.UserType or QuotaEntity.ClientIdType or QuotaEntity.IpType))
                return (ErrorCode.InvalidRequest, $"Unhandled client quota entity type: {e.EntityType}", null);
            if (e.EntityName is { Length: 0 }) return (ErrorCode.InvalidRequest, $"Empty {e.EntityType} not supported", null);
        }
        var user = entry.Entity.FirstOrDefault(e => e.EntityType == QuotaEntity.UserType);
        var client = entry.Entity.FirstOrDefault(e => e.EntityType == QuotaEntity.ClientIdType);
        var ip = entry.Entity.FirstOrDefault(e => e.EntityType == QuotaEntity.IpType);
        QuotaEntity entity;
        if (ip is not null)
        {
            // Kafka's message, missing space included: clients and tools may match it.
            if (user is not null || client is not null)
                return (ErrorCode.InvalidRequest, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId", null);
            IPAddress? address = null;
            if (ip.EntityName is { } name && !IPAddress.TryParse(name, out address))
                return (ErrorCode.InvalidRequest, $"{name} is not a valid IP or resolvable host.", null);
            entity = QuotaEntity.ForIp(address);
        }
        else
        {
            entity = new QuotaEntity(user is not null, user?.EntityName, client is not null, client?.EntityName);
        }
        foreach (var op in entry.Ops)
        {
            var valid = entity.HasIp ? op.Key == QuotaEntity.ConnectionCreationRate : QuotaEntity.Keys.Contains(op.Key);
            if (!valid) return (ErrorCode.InvalidRequest, $"Invalid configuration key {op.Key}", null);
            if (op.Remove) continue;
            if (double.IsNaN(op.Value) || op.Value <= 0) return (ErrorCode.InvalidRequest, $"Quota {op.Key} must be greater than 0", null);
            if (double.IsInfinity(op.Value) || op.Value > long.MaxValue) return (ErrorCode.InvalidRequest, $"Proposed value for {op.Key} is too large for a LONG.", null);
            if (IntegralKeys.Contains(op.Key) && Math.Abs(op.Value % 1.0) > 1e-6) return (ErrorCode.InvalidRequest, $"{op.Key} cannot be a fractional value.", null);
        }
        if (entry.Ops.GroupBy(o => o.Key).Any(g => g.Count() > 1)) return (ErrorCode.InvalidRequest, "Duplicate quota key in the request", null);
        return (ErrorCode.None, null, entity);
    }
}
