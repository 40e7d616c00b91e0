using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ListGroups v0-5: every group this coordinator knows, including groups that only hold committed offsets (Empty).
/// v4 filters by state (case-insensitive), v5 by type ("classic" or "consumer") and reports the type.
/// </summary>
internal sealed class ListGroupsHandler(GroupCoordinator coordinator) : ApiHandler<ListGroupsRequest, ListGroupsResponse>
{
    public override ApiKey Key => ApiKey.ListGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<ListGroupsResponse?> HandleAsync(RequestContext context, ListGroupsRequest request)
    {
        if (!coordinator.IsLoaded) return new ListGroupsResponse { ErrorCode = (short)ErrorCode.CoordinatorLoadInProgress };
        var groups = await coordinator.ListAsync().ConfigureAwait(false);
        var response = new ListGroupsResponse();
        // ACLs: every group with DESCRIBE on the cluster, else only the groups the principal may DESCRIBE.
        var all = context.AllowsCluster(AclOperation.Describe);
        foreach (var g in groups)
        {
            if (!all && !context.AllowsGroup(AclOperation.Describe, g.GroupId)) continue;
            if (request.StatesFilter.Count > 0 && !request.StatesFilter.Contains(g.State, StringComparer.OrdinalIgnoreCase)) continue;
            if (request.TypesFilter.Count > 0 && !request.TypesFilter.Contains(g.Type, StringComparer.OrdinalIgnoreCase)) continue;
            response.Groups.Add(new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = g.Type });
        }
        return response;
    }
}
