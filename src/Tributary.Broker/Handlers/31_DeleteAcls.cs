using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DeleteAcls v0-3: removes every ACL matching each filter (ANY and MATCH filter as in DescribeAcls) in one change
/// of the metadata store, and answers each filter with the bindings it removed. Needs ALTER on the cluster
/// (CLUSTER_AUTHORIZATION_FAILED for every filter); SECURITY_DISABLED without an authorizer; a filter with an UNKNOWN
/// value is INVALID_REQUEST alone.
/// </summary>
internal sealed class DeleteAclsHandler(BrokerState broker) : ApiHandler<DeleteAclsRequest, DeleteAclsResponse>
{
    public override ApiKey Key => ApiKey.DeleteAcls;
    public override short MinVersion => 0;
    public override short MaxVersion => 3;

    protected override async ValueTask<DeleteAclsResponse?> HandleAsync(RequestContext context, DeleteAclsRequest request)
    {
        var response = new DeleteAclsResponse();
        var refusal = !context.AllowsCluster(AclOperation.Alter) ? (ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.")
            : broker.Authorizer is null ? (ErrorCode.SecurityDisabled, "No Authorizer is configured.")
            : ((ErrorCode, string)?)null;
        var acls = broker.Topics.Image.Acls;
        var removed = new HashSet<AclBinding>();
        foreach (var f in request.Filters)
        {
            var result = new DeleteAclsResponse.DeleteAclsFilterResult();
            response.FilterResults.Add(result);
            if (refusal is var (error, message))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)error, message);
                continue;
            }
            var filter = new AclBindingFilter((AclResourceType)f.ResourceTypeFilter, f.ResourceNameFilter, (AclPatternType)f.PatternTypeFilter,
                f.PrincipalFilter, f.HostFilter, (AclOperation)f.Operation, (AclPermission)f.PermissionType);
            if (filter.Invalid() is { } invalid)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRequest, invalid);
                continue;
            }
            foreach (var acl in acls.Where(filter.Matches))
            {
                removed.Add(acl);
                result.MatchingAcls.Add(new DeleteAclsResponse.DeleteAclsMatchingAcl
                {
                    ResourceType = (sbyte)acl.ResourceType,
                    ResourceName = acl.ResourceName,
                    PatternType = (sbyte)acl.PatternType,
                    Principal = acl.Principal,
                    Host = acl.Host,
                    Operation = (sbyte)acl.Operation,
                    PermissionType = (sbyte)acl.Permission,
                });
            }
        }
        if (removed.Count == 0) return response;
        try
        {
            await broker.Topics.Store.ChangeAclsAsync([], removed, context.Cancellation).ConfigureAwait(false);
            broker.Log.Info($"acls: {context.Principal} deleted {string.Join(", ", removed)}");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            foreach (var result in response.FilterResults.Where(r => r.ErrorCode == 0 && r.MatchingAcls.Count > 0))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.UnknownServerError, "Removing the ACLs failed: " + e.Message);
                result.MatchingAcls.Clear();
            }
        }
        return response;
    }
}
