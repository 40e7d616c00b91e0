using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeAcls v0-3: the ACLs matching one filter, grouped by resource pattern, from the metadata image. Needs
/// DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); SECURITY_DISABLED without an authorizer; a filter with an
/// UNKNOWN value is INVALID_REQUEST. v0 has no pattern type: its filter and answers are LITERAL.
/// </summary>
internal sealed class DescribeAclsHandler(BrokerState broker) : ApiHandler<DescribeAclsRequest, DescribeAclsResponse>
{
    public override ApiKey Key => ApiKey.DescribeAcls;
    public override short MinVersion => 0;
    public override short MaxVersion => 3;

    protected override ValueTask<DescribeAclsResponse?> HandleAsync(RequestContext context, DescribeAclsRequest request)
    {
        if (!context.AllowsCluster(AclOperation.Describe))
            return new(Failed(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed."));
        if (broker.Authorizer is null) return new(Failed(ErrorCode.SecurityDisabled, "No Authorizer is configured."));
        var filter = new AclBindingFilter((AclResourceType)request.ResourceTypeFilter, request.ResourceNameFilter, (AclPatternType)request.PatternTypeFilter,
            request.PrincipalFilter, request.HostFilter, (AclOperation)request.Operation, (AclPermission)request.PermissionType);
        if (filter.Invalid() is { } invalid) return new(Failed(ErrorCode.InvalidRequest, invalid));
        var response = new DescribeAclsResponse();
        foreach (var resource in broker.Topics.Image.Acls.Where(filter.Matches).GroupBy(a => (a.ResourceType, a.ResourceName, a.PatternType)))
        {
            // v0 cannot say PREFIXED: such bindings are left out rather than shown as literal ones.
            if (context.ApiVersion == 0 && resource.Key.PatternType != AclPatternType.Literal) continue;
            response.Resources.Add(new DescribeAclsResponse.DescribeAclsResource
            {
                ResourceType = (sbyte)resource.Key.ResourceType,
                ResourceName = resource.Key.ResourceName,
                PatternType = (sbyte)resource.Key.PatternType,
                Acls = [.. resource.Select(a => new DescribeAclsResponse.AclDescription
                {
                    Principal = a.Principal, Host = a.Host, Operation = (sbyte)a.Operation, PermissionType = (sbyte)a.Permission,
                })],
            });
        }
        return new(response);
    }

    private static DescribeAclsResponse Failed(ErrorCode error, string message) => new() { ErrorCode = (short)error, ErrorMessage = message };
}
