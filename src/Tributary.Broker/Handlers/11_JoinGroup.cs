using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// JoinGroup v0-9, handed to the group coordinator's classic protocol. v0 has no rebalance timeout (the session
/// timeout stands in); v4+ requires a known member id (KIP-394: MEMBER_ID_REQUIRED hands one out); v5+ static
/// membership; v9 SkipAssignment is set for a static leader rejoining a stable group. The response is parked until
/// the join phase of the rebalance completes.
/// </summary>
internal sealed class JoinGroupHandler(GroupCoordinator coordinator) : ApiHandler<JoinGroupRequest, JoinGroupResponse>
{
    public override ApiKey Key => ApiKey.JoinGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => 9;

    protected override async ValueTask<JoinGroupResponse?> HandleAsync(RequestContext context, JoinGroupRequest request) =>
        !context.AllowsGroup(AclOperation.Read, request.GroupId)
            ? new JoinGroupResponse
            {
                ErrorCode = (short)ErrorCode.GroupAuthorizationFailed,
                GenerationId = -1,
                ProtocolName = context.ApiVersion >= 7 ? null : "",
                Leader = "",
                MemberId = "",
            }
            : await coordinator.JoinGroupAsync(request, context.ApiVersion, context.Client()).ConfigureAwait(false);
}

internal static class RequestContextGroupExtensions
{
    /// <summary>Client id and "/address" host of the requester, as Kafka reports members.</summary>
    public static ClientInfo Client(this RequestContext context) => new(
        context.ClientId ?? "",
        context.Remote is System.Net.IPEndPoint ip ? "/" + ip.Address : context.Remote?.ToString() ?? "");
}
