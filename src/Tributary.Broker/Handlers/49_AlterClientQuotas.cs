using Tributary.Broker.Network;
using Tributary.Broker.Quotas;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AlterClientQuotas v0-1 (KIP-546): sets and removes quotas of user / client-id entities (a null name is the default
/// entity) in the cluster metadata, where every broker applies them. Kafka's checks per entry: only user and client-id
/// (ip quotas are not served), each once; only the four quota keys; values above zero. An entry with an error changes
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

    private static (ErrorCode, string?, QuotaEntity?) Check(AlterClientQuotasRequest.EntryData entry)
    {
        if (entry.Entity.Count == 0) return (ErrorCode.InvalidRequest, "Invalid empty client quota entity", null);
        if (entry.Entity.GroupBy(e => e.EntityType).Any(g => g.Count() > 1)) return (ErrorCode.InvalidRequest, "Duplicate entity type in the client quota entity", null);
        if (entry.Entity.Any(e => e.EntityType == "ip"))
            return (ErrorCode.InvalidRequest, "IP quotas (connection_creation_rate) are not supported by Tributary; use max.connections.per.ip", null);
        if (entry.Entity.FirstOrDefault(e => e.EntityType is not (QuotaEntity.UserType or QuotaEntity.ClientIdType)) is { } unknown)
            return (ErrorCode.InvalidRequest, $"Unhandled client quota entity type: {unknown.EntityType}", null);
        foreach (var op in entry.Ops)
        {
            if (!QuotaEntity.Keys.Contains(op.Key)) return (ErrorCode.InvalidRequest, $"Invalid configuration key {op.Key}", null);
            if (!op.Remove && (op.Value <= 0 || double.IsNaN(op.Value) || double.IsInfinity(op.Value)))
                return (ErrorCode.InvalidRequest, $"Illegal value for {op.Key}: {op.Value} (must be above zero)", null);
        }
        if (entry.Ops.GroupBy(o => o.Key).Any(g => g.Count() > 1)) return (ErrorCode.InvalidRequest, "Duplicate quota key in the request", null);
        var user = entry.Entity.FirstOrDefault(e => e.EntityType == QuotaEntity.UserType);
        var client = entry.Entity.FirstOrDefault(e => e.EntityType == QuotaEntity.ClientIdType);
        return (ErrorCode.None, null, new QuotaEntity(user is not null, user?.EntityName, client is not null, client?.EntityName));
    }
}
