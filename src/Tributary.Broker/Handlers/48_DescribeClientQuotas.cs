using Tributary.Broker.Network;
using Tributary.Broker.Quotas;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeClientQuotas v0-1 (KIP-546): the quota entities (user, client-id, ip) matching every filter component, with
/// their quotas. A component matches its entity type by exact name (0), the default (1) or any specified name (2); with
/// strict, an entity may have no other types. Needs DESCRIBE_CONFIGS on the cluster.
/// </summary>
internal sealed class DescribeClientQuotasHandler(BrokerState broker) : ApiHandler<DescribeClientQuotasRequest, DescribeClientQuotasResponse>
{
    public override ApiKey Key => ApiKey.DescribeClientQuotas;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override ValueTask<DescribeClientQuotasResponse?> HandleAsync(RequestContext context, DescribeClientQuotasRequest request)
    {
        if (!context.AllowsCluster(AclOperation.DescribeConfigs))
            return new(new DescribeClientQuotasResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." });
        foreach (var component in request.Components)
        {
            if (component.EntityType is not (QuotaEntity.UserType or QuotaEntity.ClientIdType or QuotaEntity.IpType))
                return new(Invalid($"Custom entity type '{component.EntityType}' not supported"));
            if (component.MatchType is < 0 or > 2) return new(Invalid($"Unknown match type {component.MatchType}"));
            if (component.MatchType == 0 && component.Match is null) return new(Invalid("An exact match needs a name"));
        }
        if (request.Components.GroupBy(c => c.EntityType).Any(g => g.Count() > 1)) return new(Invalid("Duplicate filter component entity type"));
        var response = new DescribeClientQuotasResponse { Entries = [] };
        foreach (var (key, values) in broker.Topics.Image.ClientQuotas.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var entity = QuotaEntity.Parse(key);
            var parts = entity.Parts().ToList();
            if (!request.Components.All(c => parts.Any(p => p.Type == c.EntityType && Matches(c, p.Name)))) continue;
            if (request.Strict && parts.Count != request.Components.Count) continue;
            response.Entries.Add(new DescribeClientQuotasResponse.EntryData
            {
                Entity = [.. parts.Select(p => new DescribeClientQuotasResponse.EntityData { EntityType = p.Type, EntityName = p.Name })],
                Values = [.. values.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => new DescribeClientQuotasResponse.ValueData { Key = v.Key, Value = v.Value })],
            });
        }
        return new(response);
    }

    private static bool Matches(DescribeClientQuotasRequest.ComponentData component, string? name) => component.MatchType switch
    {
        0 => name == component.Match,
        1 => name is null,
        _ => name is not null,
    };

    private static DescribeClientQuotasResponse Invalid(string message) =>
        new() { ErrorCode = (short)ErrorCode.InvalidRequest, ErrorMessage = message };
}
