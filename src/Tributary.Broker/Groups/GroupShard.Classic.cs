using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>Who sent a request: the member's client id and host, as DescribeGroups reports them.</summary>
public readonly record struct ClientInfo(string ClientId, string ClientHost);

/// <summary>
/// The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), following Kafka's GroupCoordinator:
/// <list type="bullet">
/// <item>A rebalance starts (PreparingRebalance) when a member joins, leaves, expires or changes its protocols. It
/// ends when every known member has rejoined, or when the largest rebalance timeout passes (members that did not
/// rejoin are removed). A group that was Empty waits group.initial.rebalance.delay.ms first, extended while new
/// members keep arriving, up to the rebalance timeout, so a starting fleet lands in one generation.</item>
/// <item>The end of the join phase bumps the generation, selects the protocol all members support by vote, and
/// answers every waiting JoinGroup; only the leader gets the member list. The group is then CompletingRebalance
/// until the leader's SyncGroup brings the assignment, which is stored before any SyncGroup is answered (Stable).</item>
/// <item>Session timeouts: every heartbeat, join and sync pushes a member's deadline out; a member past it is
/// removed, unless it is parked in a JoinGroup or SyncGroup (the rebalance timeout governs those).</item>
/// <item>KIP-394: from JoinGroup v4 a member without an id gets one with MEMBER_ID_REQUIRED and must rejoin with it.</item>
/// <item>KIP-345 static members (group.instance.id): a known instance rejoining with no member id replaces its old
/// member id, keeps its assignment and, in a Stable group whose protocols did not change, triggers no rebalance.
/// The old member id is fenced (FENCED_INSTANCE_ID).</item>
/// </list>
/// The broker never looks inside assignments: eager and cooperative rebalancing are both driven by the clients.
/// </summary>
internal sealed partial class GroupShard
{
    internal static JoinGroupResponse JoinError(ErrorCode error, string memberId = "") =>
        new() { ErrorCode = (short)error, MemberId = memberId, GenerationId = -1 };

    internal Task<JoinGroupResponse> JoinGroup(JoinGroupRequest request, short version, ClientInfo client)
    {
        if (request.GroupId.Length == 0) return Task.FromResult(JoinError(ErrorCode.InvalidGroupId, request.MemberId));
        if (request.SessionTimeoutMs < Settings.MinSessionTimeoutMs || request.SessionTimeoutMs > Settings.MaxSessionTimeoutMs)
            return Task.FromResult(JoinError(ErrorCode.InvalidSessionTimeout, request.MemberId));
        var known = request.MemberId.Length > 0;
        if (known && !_groups.ContainsKey(request.GroupId)) return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, request.MemberId));
        var group = GetOrCreate(request.GroupId);
        if (group.Consumer is { Members.Count: > 0 }) return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
        if (group.Consumer is { } empty)
        {
            // An empty consumer-protocol group becomes a classic group when a classic member joins; its records go.
            _context.Append([.. ConsumerGroupTombstones(empty)], _ => { });
            group.Consumer = null;
        }
        if (group.State == GroupState.Dead) return Task.FromResult(JoinError(ErrorCode.CoordinatorNotAvailable, request.MemberId));
        if (!group.SupportsProtocols(request.ProtocolType, request.Protocols.Select(p => p.Name).ToList()))
            return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
        if (request.RebalanceTimeoutMs <= 0 || version == 0) request.RebalanceTimeoutMs = request.SessionTimeoutMs;

        if (!known)
        {
            var newId = (request.GroupInstanceId ?? client.ClientId) + "-" + Guid.NewGuid().ToString("D");
            if (request.GroupInstanceId is { } instance && group.StaticMembers.TryGetValue(instance, out var oldId))
                return ReplaceStaticMember(group, group.Members[oldId], newId, request, client);
            if (group.Members.Count >= Settings.MaxGroupSize) return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached));
            if (version >= 4 && request.GroupInstanceId is null)
            {
                group.PendingMembers.Add(newId);
                return Task.FromResult(JoinError(ErrorCode.MemberIdRequired, newId));
            }
            return AddMemberAndRebalance(group, newId, request, client);
        }

        if (group.PendingMembers.Contains(request.MemberId))
        {
            if (group.Members.Count >= Settings.MaxGroupSize)
            {
                group.PendingMembers.Remove(request.MemberId);
                return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached, request.MemberId));
            }
            return AddMemberAndRebalance(group, request.MemberId, request, client);
        }
        if (IsFenced(group, request.MemberId, request.GroupInstanceId)) return Task.FromResult(JoinError(ErrorCode.FencedInstanceId, request.MemberId));
        if (!group.Members.TryGetValue(request.MemberId, out var member)) return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, request.MemberId));

        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                return UpdateMemberAndRebalance(group, member, request);
            case GroupState.CompletingRebalance:
                if (SameProtocols(member, request)) return Task.FromResult(CurrentJoinResponse(group, member));
                return UpdateMemberAndRebalance(group, member, request);
            case GroupState.Stable:
                if (member.MemberId != group.Leader && SameProtocols(member, request)) return Task.FromResult(CurrentJoinResponse(group, member));
                return UpdateMemberAndRebalance(group, member, request);
            default:
                return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, request.MemberId));
        }
    }

    private static bool IsFenced(Group group, string memberId, string? instanceId) =>
        instanceId is not null && group.StaticMembers.TryGetValue(instanceId, out var current) && current != memberId;

    private static bool SameProtocols(ClassicMember member, JoinGroupRequest request) =>
        member.Protocols.Count == request.Protocols.Count
        && member.Protocols.Zip(request.Protocols).All(p => p.First.Name == p.Second.Name && p.First.Metadata.AsSpan().SequenceEqual(p.Second.Metadata));

    private static JoinGroupResponse CurrentJoinResponse(Group group, ClassicMember member) => new()
    {
        GenerationId = group.Generation,
        ProtocolType = group.ProtocolType,
        ProtocolName = group.ProtocolName,
        Leader = group.Leader ?? "",
        MemberId = member.MemberId,
        Members = member.MemberId == group.Leader ? MemberList(group) : [],
    };

    private static List<JoinGroupResponse.JoinGroupResponseMember> MemberList(Group group) =>
        [.. group.Members.Values.Select(m => new JoinGroupResponse.JoinGroupResponseMember
        {
            MemberId = m.MemberId,
            GroupInstanceId = m.InstanceId,
            Metadata = m.MetadataFor(group.ProtocolName) ?? [],
        })];

    private Task<JoinGroupResponse> AddMemberAndRebalance(Group group, string memberId, JoinGroupRequest request, ClientInfo client)
    {
        var member = new ClassicMember(memberId, request.GroupInstanceId, client.ClientId, client.ClientHost)
        {
            SessionTimeoutMs = request.SessionTimeoutMs,
            RebalanceTimeoutMs = request.RebalanceTimeoutMs,
            Protocols = [.. request.Protocols.Select(p => (p.Name, p.Metadata))],
            JoinWaiter = NewWaiter<JoinGroupResponse>(),
        };
        if (group.Members.Count == 0) group.ProtocolType = request.ProtocolType;
        group.Members[memberId] = member;
        group.PendingMembers.Remove(memberId);
        if (request.GroupInstanceId is { } instance) group.StaticMembers[instance] = memberId;
        group.Leader ??= memberId;
        group.NewMemberAdded = true;
        ScheduleSessionExpiry(group, member);
        if (group.State != GroupState.PreparingRebalance) PrepareRebalance(group);
        else TryCompleteJoin(group);
        return member.JoinWaiter.Task;
    }

    private Task<JoinGroupResponse> UpdateMemberAndRebalance(Group group, ClassicMember member, JoinGroupRequest request)
    {
        member.Protocols = [.. request.Protocols.Select(p => (p.Name, p.Metadata))];
        member.SessionTimeoutMs = request.SessionTimeoutMs;
        member.RebalanceTimeoutMs = request.RebalanceTimeoutMs;
        member.JoinWaiter?.TrySetResult(JoinError(ErrorCode.RebalanceInProgress, member.MemberId));
        var waiter = member.JoinWaiter = NewWaiter<JoinGroupResponse>();
        ScheduleSessionExpiry(group, member);
        if (group.State != GroupState.PreparingRebalance) PrepareRebalance(group);
        else TryCompleteJoin(group);
        return waiter.Task;
    }

    /// <summary>A static member came back with a new member id: it takes over the old member's place and assignment.</summary>
    private Task<JoinGroupResponse> ReplaceStaticMember(Group group, ClassicMember old, string newId, JoinGroupRequest request, ClientInfo client)
    {
        var member = new ClassicMember(newId, old.InstanceId, client.ClientId, client.ClientHost)
        {
            SessionTimeoutMs = request.SessionTimeoutMs,
            RebalanceTimeoutMs = request.RebalanceTimeoutMs,
            Protocols = [.. request.Protocols.Select(p => (p.Name, p.Metadata))],
            Assignment = old.Assignment,
        };
        old.SessionTimer?.Dispose();
        old.JoinWaiter?.TrySetResult(JoinError(ErrorCode.FencedInstanceId, old.MemberId));
        old.SyncWaiter?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.FencedInstanceId });
        group.Members.Remove(old.MemberId);
        group.Members[newId] = member;
        group.StaticMembers[old.InstanceId!] = newId;
        if (group.Leader == old.MemberId) group.Leader = newId;
        ScheduleSessionExpiry(group, member);
        var unchanged = old.Protocols.Count == member.Protocols.Count
            && old.MetadataFor(group.ProtocolName) is { } before && member.MetadataFor(group.ProtocolName) is { } after
            && before.AsSpan().SequenceEqual(after);
        if (group.State == GroupState.Stable && unchanged)
        {
            // No rebalance: the member gets the current generation and, at SyncGroup, its old assignment.
            PersistGroup(group);
            var response = CurrentJoinResponse(group, member);
            response.Members = [];
            response.SkipAssignment = member.MemberId == group.Leader;
            return Task.FromResult(response);
        }
        member.JoinWaiter = NewWaiter<JoinGroupResponse>();
        if (group.State != GroupState.PreparingRebalance) PrepareRebalance(group);
        else TryCompleteJoin(group);
        return member.JoinWaiter.Task;
    }

    private void PrepareRebalance(Group group)
    {
        if (group.State == GroupState.CompletingRebalance) FailPendingSyncs(group, ErrorCode.RebalanceInProgress);
        int delay;
        if (group.State == GroupState.Empty)
        {
            delay = Math.Min(Settings.InitialRebalanceDelayMs, group.MaxRebalanceTimeoutMs);
            group.InInitialDelay = true;
            group.InitialDelayRemainingMs = group.MaxRebalanceTimeoutMs - delay;
        }
        else
        {
            delay = group.MaxRebalanceTimeoutMs;
            group.InInitialDelay = false;
        }
        group.NewMemberAdded = false;
        SetState(group, GroupState.PreparingRebalance);
        ArmJoinTimer(group, delay);
        // As Kafka's DelayedJoin: when every member is already waiting (a lone member rejoining, the last member
        // leaving), the join completes now, so the caller's answer already reflects the new generation or state.
        TryCompleteJoin(group);
    }

    private void ArmJoinTimer(Group group, long delayMs)
    {
        group.JoinTimer?.Dispose();
        var token = ++group.JoinTimerToken;
        group.JoinTimer = _context.Schedule(TimeSpan.FromMilliseconds(delayMs), () => OnJoinTimer(group, token));
    }

    private void OnJoinTimer(Group group, int token)
    {
        if (token != group.JoinTimerToken || group.State != GroupState.PreparingRebalance) return;
        if (group.InInitialDelay && group.NewMemberAdded && group.InitialDelayRemainingMs > 0)
        {
            // Members are still arriving: wait another delay, within the rebalance timeout.
            var delay = Math.Min(Settings.InitialRebalanceDelayMs, group.InitialDelayRemainingMs);
            group.InitialDelayRemainingMs -= delay;
            group.NewMemberAdded = false;
            ArmJoinTimer(group, delay);
            return;
        }
        CompleteJoin(group);
    }

    private void TryCompleteJoin(Group group)
    {
        if (group.State != GroupState.PreparingRebalance || group.InInitialDelay) return;
        if (group.Members.Values.All(m => m.JoinWaiter is not null)) CompleteJoin(group);
    }

    private void CompleteJoin(Group group)
    {
        group.JoinTimer?.Dispose();
        group.JoinTimer = null;
        group.JoinTimerToken++;
        group.InInitialDelay = false;
        foreach (var gone in group.Members.Values.Where(m => m.JoinWaiter is null).ToList()) RemoveMember(group, gone);
        group.Generation++;
        if (group.Members.Count == 0)
        {
            group.ProtocolName = null;
            group.Leader = null;
            SetState(group, GroupState.Empty);
            PersistGroup(group);
            return;
        }
        if (group.Leader is null || !group.Members.ContainsKey(group.Leader)) group.Leader = group.Members.Keys.First();
        group.ProtocolName = group.SelectProtocol();
        SetState(group, GroupState.CompletingRebalance);
        var members = MemberList(group);
        foreach (var member in group.Members.Values)
        {
            var waiter = member.JoinWaiter!;
            member.JoinWaiter = null;
            ScheduleSessionExpiry(group, member);
            waiter.TrySetResult(new JoinGroupResponse
            {
                GenerationId = group.Generation,
                ProtocolType = group.ProtocolType,
                ProtocolName = group.ProtocolName,
                Leader = group.Leader,
                MemberId = member.MemberId,
                Members = member.MemberId == group.Leader ? members : [],
            });
        }
    }

    private void SetState(Group group, GroupState state)
    {
        group.State = state;
        group.StateTimestamp = NowMs;
    }

    private static void FailPendingSyncs(Group group, ErrorCode error)
    {
        foreach (var member in group.Members.Values)
        {
            member.Assignment = [];
            member.SyncWaiter?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)error });
            member.SyncWaiter = null;
        }
    }

    internal Task<SyncGroupResponse> SyncGroup(SyncGroupRequest request)
    {
        static Task<SyncGroupResponse> Error(ErrorCode e) => Task.FromResult(new SyncGroupResponse { ErrorCode = (short)e });
        if (!_groups.TryGetValue(request.GroupId, out var group)) return Error(ErrorCode.UnknownMemberId);
        if (IsFenced(group, request.MemberId, request.GroupInstanceId)) return Error(ErrorCode.FencedInstanceId);
        if (!group.Members.TryGetValue(request.MemberId, out var member)) return Error(ErrorCode.UnknownMemberId);
        if (request.GenerationId != group.Generation) return Error(ErrorCode.IllegalGeneration);
        if ((request.ProtocolType is { } type && type != group.ProtocolType) || (request.ProtocolName is { } name && name != group.ProtocolName))
            return Error(ErrorCode.InconsistentGroupProtocol);
        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                return Error(ErrorCode.RebalanceInProgress);
            case GroupState.Stable:
                ScheduleSessionExpiry(group, member);
                return Task.FromResult(new SyncGroupResponse { ProtocolType = group.ProtocolType, ProtocolName = group.ProtocolName, Assignment = member.Assignment });
            case GroupState.CompletingRebalance:
                break;
            default:
                return Error(ErrorCode.UnknownMemberId);
        }
        member.SyncWaiter?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress });
        var waiter = member.SyncWaiter = NewWaiter<SyncGroupResponse>();
        ScheduleSessionExpiry(group, member);
        if (member.MemberId == group.Leader)
        {
            var assignments = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var a in request.Assignments) assignments[a.MemberId] = a.Assignment;
            foreach (var m in group.Members.Values) m.Assignment = assignments.GetValueOrDefault(m.MemberId) ?? [];
            var generation = group.Generation;
            _context.Append([GroupMetadataRecord(group)], error =>
            {
                if (group.Generation != generation || group.State != GroupState.CompletingRebalance) return;
                if (error is not null)
                {
                    FailPendingSyncs(group, ErrorCode.CoordinatorNotAvailable);
                    PrepareRebalance(group);
                    return;
                }
                SetState(group, GroupState.Stable);
                foreach (var m in group.Members.Values)
                {
                    m.SyncWaiter?.TrySetResult(new SyncGroupResponse { ProtocolType = group.ProtocolType, ProtocolName = group.ProtocolName, Assignment = m.Assignment });
                    m.SyncWaiter = null;
                }
            });
        }
        return waiter.Task;
    }

    internal ErrorCode Heartbeat(string groupId, string memberId, string? instanceId, int generation)
    {
        if (!_groups.TryGetValue(groupId, out var group)) return ErrorCode.UnknownMemberId;
        if (IsFenced(group, memberId, instanceId)) return ErrorCode.FencedInstanceId;
        if (!group.Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
        if (generation != group.Generation) return ErrorCode.IllegalGeneration;
        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                ScheduleSessionExpiry(group, member);
                return ErrorCode.RebalanceInProgress;
            case GroupState.CompletingRebalance or GroupState.Stable:
                ScheduleSessionExpiry(group, member);
                return ErrorCode.None;
            default:
                return ErrorCode.UnknownMemberId;
        }
    }

    internal (ErrorCode, List<ErrorCode>) LeaveGroup(string groupId, IReadOnlyList<(string MemberId, string? InstanceId)> leaving)
    {
        var errors = new List<ErrorCode>();
        if (!_groups.TryGetValue(groupId, out var group)) return (ErrorCode.UnknownMemberId, errors);
        foreach (var (memberId, instanceId) in leaving)
        {
            ClassicMember? member = null;
            if (instanceId is not null)
            {
                if (!group.StaticMembers.TryGetValue(instanceId, out var current)) { errors.Add(ErrorCode.UnknownMemberId); continue; }
                if (memberId.Length > 0 && memberId != current) { errors.Add(ErrorCode.FencedInstanceId); continue; }
                member = group.Members[current];
            }
            else if (group.PendingMembers.Remove(memberId))
            {
                errors.Add(ErrorCode.None);
                continue;
            }
            else if (!group.Members.TryGetValue(memberId, out member))
            {
                errors.Add(ErrorCode.UnknownMemberId);
                continue;
            }
            RemoveMemberAndUpdateGroup(group, member);
            errors.Add(ErrorCode.None);
        }
        return (ErrorCode.None, errors);
    }

    private void ScheduleSessionExpiry(Group group, ClassicMember member)
    {
        member.SessionDeadline = NowMs + member.SessionTimeoutMs;
        var due = TimeSpan.FromMilliseconds(member.SessionTimeoutMs);
        if (member.SessionTimer is { } timer) timer.Change(due);
        else member.SessionTimer = _context.Schedule(due, () => OnSessionTimer(group, member));
    }

    private void OnSessionTimer(Group group, ClassicMember member)
    {
        if (!group.Members.TryGetValue(member.MemberId, out var current) || !ReferenceEquals(current, member)) return;
        if (member.JoinWaiter is not null || member.SyncWaiter is not null || NowMs < member.SessionDeadline)
        {
            // Parked in a rebalance (the rebalance timeout governs it) or heartbeated meanwhile: check again later.
            member.SessionTimer?.Change(TimeSpan.FromMilliseconds(Math.Max(1, member.SessionDeadline - NowMs)));
            if (member.JoinWaiter is not null || member.SyncWaiter is not null) member.SessionDeadline = NowMs + member.SessionTimeoutMs;
            return;
        }
        _log.Debug($"group {group.Id}: member {member.MemberId} expired after {member.SessionTimeoutMs} ms without a heartbeat");
        RemoveMemberAndUpdateGroup(group, member);
    }

    private static void RemoveMember(Group group, ClassicMember member)
    {
        member.SessionTimer?.Dispose();
        member.SessionTimer = null;
        member.JoinWaiter?.TrySetResult(JoinError(ErrorCode.UnknownMemberId, member.MemberId));
        member.JoinWaiter = null;
        member.SyncWaiter?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.UnknownMemberId });
        member.SyncWaiter = null;
        group.Members.Remove(member.MemberId);
        if (member.InstanceId is { } instance && group.StaticMembers.TryGetValue(instance, out var id) && id == member.MemberId)
            group.StaticMembers.Remove(instance);
        if (group.Leader == member.MemberId) group.Leader = group.Members.Keys.FirstOrDefault();
    }

    private void RemoveMemberAndUpdateGroup(Group group, ClassicMember member)
    {
        RemoveMember(group, member);
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                PrepareRebalance(group);
                break;
            case GroupState.PreparingRebalance:
                TryCompleteJoin(group);
                break;
        }
    }
}
