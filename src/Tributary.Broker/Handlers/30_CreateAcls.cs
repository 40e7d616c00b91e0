using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// CreateAcls v0-3: stores ACL bindings in the metadata store (every broker applies them from its image). Needs ALTER
/// on the cluster (CLUSTER_AUTHORIZATION_FAILED for every creation); SECURITY_DISABLED without an authorizer. Each
/// creation is checked as Kafka checks it ("kafka-cluster" for CLUSTER, a non-empty name, a known resource type,
/// LITERAL or PREFIXED, a known operation, ALLOW or DENY, a principal "Type:name") and refused alone with
/// INVALID_REQUEST; the valid ones are stored together. As in Kafka, any operation goes with any resource type
/// (DELEGATION_TOKEN and USER included). Creating a binding that exists succeeds and stores it once.
/// </summary>
internal sealed class CreateAclsHandler(BrokerState broker) : ApiHandler<CreateAclsRequest, CreateAclsResponse>
{
    public override ApiKey Key => ApiKey.CreateAcls;
    public override short MinVersion => 0;
    public override short MaxVersion => 3;

    protected override async ValueTask<CreateAclsResponse?> HandleAsync(RequestContext context, CreateAclsRequest request)
    {
        var response = new CreateAclsResponse();
        var refusal = !context.AllowsCluster(AclOperation.Alter) ? (ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.")
            : broker.Authorizer is null ? (ErrorCode.SecurityDisabled, "No Authorizer is configured.")
            : ((ErrorCode, string)?)null;
        var valid = new List<AclBinding>();
        foreach (var c in request.Creations)
        {
            var result = new CreateAclsResponse.AclCreationResult();
            response.Results.Add(result);
            if (refusal is var (error, message))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)error, message);
                continue;
            }
            var acl = new AclBinding((AclResourceType)c.ResourceType, c.ResourceName, (AclPatternType)c.ResourcePatternType, c.Principal, c.Host,
                (AclOperation)c.Operation, (AclPermission)c.PermissionType);
            if (acl.Invalid() is { } invalid) (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRequest, invalid);
            else valid.Add(acl);
        }
        if (valid.Count == 0) return response;
        try
        {
            await broker.Topics.Store.ChangeAclsAsync(valid, [], context.Cancellation).ConfigureAwait(false);
            broker.Log.Info($"acls: {context.Principal} created {string.Join(", ", valid)}");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            foreach (var result in response.Results.Where(r => r.ErrorCode == 0))
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.UnknownServerError, "Storing the ACLs failed: " + e.Message);
        }
        return response;
    }
}
