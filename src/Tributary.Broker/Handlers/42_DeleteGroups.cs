using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DeleteGroups v0-2: deletes groups without members, with their committed offsets (tombstones in
/// __consumer_offsets). GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP while it has members.
/// </summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator) : ApiHandler<DeleteGroupsRequest, DeleteGroupsResponse>
{
    public override ApiKey Key => ApiKey.DeleteGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => 2;

    protected override async ValueTask<DeleteGroupsResponse?> HandleAsync(RequestContext context, DeleteGroupsRequest request)
    {
        var response = new DeleteGroupsResponse();
        foreach (var id in request.GroupsNames)
        {
            var error = !context.AllowsGroup(AclOperation.Delete, id) ? ErrorCode.GroupAuthorizationFailed
                : await coordinator.DeleteGroupAsync(id).ConfigureAwait(false);
            response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = id, ErrorCode = (short)error });
        }
        return response;
    }
}
