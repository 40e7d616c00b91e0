using System.Text;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>One member's heartbeat of the KIP-848 consumer protocol, as the handler hands it over.</summary>
public sealed record ConsumerHeartbeat(
    string GroupId, string MemberId, int MemberEpoch, string? InstanceId, string? RackId, int RebalanceTimeoutMs,
    IReadOnlyList<string>? SubscribedTopicNames, string? SubscribedTopicRegex, string? ServerAssignor,
    IReadOnlyDictionary<Guid, IReadOnlyList<int>>? OwnedPartitions, ClientInfo Client);

/// <summary>
/// The KIP-848 consumer group protocol (ConsumerGroupHeartbeat), with the assignment computed here, on the broker.
///
/// Each heartbeat may change the member's subscription; any change of membership, subscriptions, of what their regexes
/// resolve to (GroupShard.Regex.cs) or of the subscribed topics' partition counts bumps the group epoch and recomputes
/// the target assignment with the group's assignor (<see cref="ServerAssignors"/>). Members then converge on the target
/// one heartbeat at a time:
/// <list type="number">
/// <item>A member that owns partitions its target no longer gives it is told to keep only the intersection; it
/// stays at its epoch until a later heartbeat reports (owned partitions) that it let them go.</item>
/// <item>Once it has nothing to revoke it moves to the target epoch and gets its target partitions, except those
/// another member still owns; those follow in later heartbeats, after the owner released them.</item>
/// </list>
/// So a partition is never owned by two members at once. A member that stops heartbeating for
/// group.consumer.session.timeout.ms is removed and its partitions are reassigned, and so is a member that does not
/// release the partitions it was told to revoke within its rebalance timeout. Epoch -1 leaves the group; -2 is a
/// static member's temporary leave: it keeps its partitions until its session expires, and a new member with the same
/// group.instance.id takes them over without a rebalance (UNRELEASED_INSTANCE_ID while the old one is still in,
/// FENCED_INSTANCE_ID for the replaced incarnation). Not implemented: rack-aware assignment; client-side assignors.
/// The group's state is persisted in __consumer_offsets (GroupCoordinator.ConsumerState.cs).
/// </summary>
internal sealed partial class GroupShard
{
    /// <summary>The member epoch of a static member's temporary leave (KIP-848's LEAVE_GROUP_STATIC_MEMBER_EPOCH).</summary>
    private const int LeaveStaticEpoch = -2;

    internal Task<ConsumerGroupHeartbeatResponse> ConsumerHeartbeat(ConsumerHeartbeat heartbeat)
    {
        var response = ConsumerHeartbeatOnLoop(heartbeat);
        if (!_groups.TryGetValue(heartbeat.GroupId, out var group)) return Task.FromResult(response);
        return PersistConsumerGroup(group, response, () => new ConsumerGroupHeartbeatResponse
        {
            ErrorCode = (short)ErrorCode.CoordinatorNotAvailable,
            MemberId = heartbeat.MemberId,
            MemberEpoch = heartbeat.MemberEpoch,
            HeartbeatIntervalMs = Settings.ConsumerHeartbeatIntervalMs,
        });
    }

    private ConsumerGroupHeartbeatResponse ConsumerHeartbeatOnLoop(ConsumerHeartbeat hb)
    {
        ConsumerGroupHeartbeatResponse Error(ErrorCode e, string? message = null) =>
            new()
            {
                ErrorCode = (short)e,
                ErrorMessage = message,
                MemberId = hb.MemberId,
                MemberEpoch = hb.MemberEpoch,
                HeartbeatIntervalMs = Settings.ConsumerHeartbeatIntervalMs,
            };

        if (hb.GroupId.Length == 0) return Error(ErrorCode.InvalidRequest, "GroupId can't be empty.");
        if (hb.ServerAssignor is { } name && !ServerAssignors.Supports(name)) return Error(ErrorCode.UnsupportedAssignor, $"Assignor {name} is not supported; use uniform or range.");
        // The regex is the key of its ConsumerGroupRegularExpression record, an int16-length string.
        if (hb.SubscribedTopicRegex is { } pattern && Encoding.UTF8.GetByteCount(pattern) > short.MaxValue)
            return Error(ErrorCode.InvalidRegularExpression, $"SubscribedTopicRegex is longer than {short.MaxValue} bytes.");
        _groups.TryGetValue(hb.GroupId, out var group);
        if (group is not null && group.Members.Count > 0) return Error(ErrorCode.GroupIdNotFound, $"Group {hb.GroupId} is a classic group.");

        if (hb.MemberEpoch == LeaveStaticEpoch && hb.InstanceId is null) return Error(ErrorCode.InvalidRequest, "InstanceId can't be null.");
        // A static member is known by its instance id: a heartbeat (or leave) from another member id with that
        // instance id comes from an incarnation that has been replaced.
        if (hb.InstanceId is { } staticId && hb.MemberEpoch != 0 && group?.Consumer is { } statics)
        {
            var current = statics.Members.Values.FirstOrDefault(m => m.InstanceId == staticId);
            if (current is null) return Error(ErrorCode.UnknownMemberId, $"Instance id {staticId} is unknown.");
            if (current.MemberId != hb.MemberId)
                return Error(ErrorCode.FencedInstanceId, $"Static member {hb.MemberId} with instance id {staticId} was replaced by member {current.MemberId}.");
        }

        if (hb.MemberEpoch is -1 or LeaveStaticEpoch)
        {
            if (group?.Consumer is { } leaving && leaving.Members.TryGetValue(hb.MemberId, out var gone))
            {
                if (hb.MemberEpoch == LeaveStaticEpoch) LeaveTemporarily(group, leaving, gone);
                else RemoveConsumerMember(group, leaving, gone);
            }
            return new ConsumerGroupHeartbeatResponse { MemberId = hb.MemberId, MemberEpoch = hb.MemberEpoch };
        }

        group ??= GetOrCreate(hb.GroupId);
        var consumer = group.Consumer ??= new ConsumerGroup();
        var changed = false;
        if (!consumer.Members.TryGetValue(hb.MemberId, out var member))
        {
            if (hb.MemberEpoch != 0) return Error(ErrorCode.UnknownMemberId, $"Member {hb.MemberId} is not in group {hb.GroupId}.");
            if (hb.SubscribedTopicNames is null && hb.SubscribedTopicRegex is null)
                return Error(ErrorCode.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set when joining.");
            var memberId = hb.MemberId.Length > 0 ? hb.MemberId : Guid.NewGuid().ToString("N");
            var previous = hb.InstanceId is { } instance ? consumer.Members.Values.FirstOrDefault(m => m.InstanceId == instance) : null;
            if (previous is not null && previous.MemberEpoch != LeaveStaticEpoch)
                return Error(ErrorCode.UnreleasedInstanceId, $"Static member {previous.MemberId} with instance id {hb.InstanceId} is still in the group.");
            member = new ConsumerMember(memberId) { InstanceId = hb.InstanceId, ClientId = hb.Client.ClientId, ClientHost = hb.Client.ClientHost };
            consumer.Members[memberId] = member;
            if (previous is not null) TakeOver(consumer, previous, member);
            else changed = true;
        }
        else if (hb.MemberEpoch == 0)
        {
            // The member lost its state and rejoins: it owns nothing any more.
            ReleaseAll(consumer, member);
            member.MemberEpoch = 0;
        }
        else if (hb.MemberEpoch != member.MemberEpoch && hb.MemberEpoch != member.PreviousEpoch)
        {
            return Error(ErrorCode.FencedMemberEpoch, $"Epoch {hb.MemberEpoch} does not match {member.MemberEpoch}.");
        }

        if (hb.RackId is not null) member.RackId = hb.RackId;
        if (hb.ServerAssignor is not null) member.ServerAssignor = hb.ServerAssignor;
        if (hb.RebalanceTimeoutMs > 0) member.RebalanceTimeoutMs = hb.RebalanceTimeoutMs;
        if (hb.SubscribedTopicNames is { } names && !names.Order(StringComparer.Ordinal).SequenceEqual(member.SubscribedTopicNames.Order(StringComparer.Ordinal)))
        {
            member.SubscribedTopicNames = [.. names];
            changed = true;
        }
        // An empty regex (what librdkafka sends with a topic list) means none; comparing it unnormalized would bump
        // the group epoch on every full heartbeat.
        if (hb.SubscribedTopicRegex is { } regex && (regex.Length == 0 ? null : regex) != member.SubscribedTopicRegex)
        {
            member.SubscribedTopicRegex = regex.Length == 0 ? null : regex;
            changed = true;
        }
        if (hb.ServerAssignor is { } assignor && assignor != consumer.Assignor)
        {
            consumer.Assignor = assignor;
            changed = true;
        }

        // Partitions being revoked from the member are free for their next owner once it reports it no longer owns them.
        if (hb.OwnedPartitions is { } owned)
        {
            foreach (var key in consumer.PendingRelease.Where(kv => kv.Value == member.MemberId).Select(kv => kv.Key).ToList())
            {
                if (owned.TryGetValue(key.Item1, out var o) && o.Contains(key.Item2)) continue;
                consumer.PendingRelease.Remove(key);
                if (consumer.Owners.TryGetValue(key, out var owner) && owner == member.MemberId) consumer.Owners.Remove(key);
            }
        }

        // A regex counts with what it matched at the group's last refresh; the refresh runs off the heartbeat
        // (GroupShard.Regex.cs), and what it finds reaches the member in a later heartbeat.
        var topology = ResolveSubscriptions(consumer);
        if (changed || !SameTopology(topology, consumer.TopicPartitionCounts))
        {
            consumer.GroupEpoch++;
            consumer.TopicPartitionCounts = topology;
            ComputeTargetAssignment(consumer);
        }
        MaybeRefreshRegexes(group, consumer);

        var sent = Reconcile(consumer, member);
        ScheduleConsumerSessionExpiry(group, consumer, member);
        ScheduleRevocationTimeout(group, consumer, member);
        return new ConsumerGroupHeartbeatResponse
        {
            MemberId = member.MemberId,
            MemberEpoch = member.MemberEpoch,
            HeartbeatIntervalMs = HeartbeatInterval(consumer, member),
            Assignment = sent || hb.MemberEpoch == 0 || hb.OwnedPartitions is not null && !SameOwned(hb.OwnedPartitions, member.Assigned)
                ? new ConsumerGroupHeartbeatResponse.AssignmentData
                {
                    TopicPartitions = [.. member.Assigned.Where(kv => kv.Value.Count > 0).Select(kv => new ConsumerGroupHeartbeatResponse.TopicPartitions
                    {
                        TopicId = kv.Key, Partitions = [.. kv.Value],
                    })],
                }
                : null,
        };
    }

    /// <summary>
    /// The heartbeat interval for this member's next heartbeat. The broker cannot push: a member learns that a partition
    /// it waits for has been released, or confirms a revocation, only by heartbeating. A member that is mid-reconciliation
    /// (waiting for partitions another member still owns, or revoking) is asked back after a twentieth of the interval (at
    /// least 25 ms), so a rebalance finishes within about one interval of the join instead of two; members at their
    /// target heartbeat at the configured interval.
    /// </summary>
    private int HeartbeatInterval(ConsumerGroup consumer, ConsumerMember member)
    {
        var interval = Settings.ConsumerHeartbeatIntervalMs;
        var reconciling = consumer.PendingRelease.ContainsValue(member.MemberId) || !ConsumerGroup.SameAssignment(member.Assigned, member.Target);
        return reconciling ? Math.Min(interval, Math.Max(25, interval / 20)) : interval;
    }

    private static bool SameOwned(IReadOnlyDictionary<Guid, IReadOnlyList<int>> owned, Dictionary<Guid, SortedSet<int>> assigned) =>
        ConsumerGroup.SameAssignment(owned.ToDictionary(kv => kv.Key, kv => new SortedSet<int>(kv.Value)), assigned);

    /// <summary>
    /// Each member's subscribed topics (its names, and what its regex matched at the group's last refresh), and those of
    /// them that exist with their partition counts (the input of the assignor). Resolutions of regexes no member
    /// subscribes to any more are dropped (their records get tombstones).
    /// </summary>
    private Dictionary<string, int> ResolveSubscriptions(ConsumerGroup consumer)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var m in consumer.Members.Values)
        {
            m.SubscribedTopics = [.. m.SubscribedTopicNames];
            if (m.SubscribedTopicRegex is { } regex && consumer.ResolvedRegexes.TryGetValue(regex, out var resolved))
                m.SubscribedTopics.AddRange(resolved.Topics.Where(t => !m.SubscribedTopicNames.Contains(t)).Order(StringComparer.Ordinal));
            foreach (var name in m.SubscribedTopics)
                if (_topics.Get(name) is { } topic) result[name] = topic.PartitionCount;
        }
        var subscribed = SubscribedRegexes(consumer);
        foreach (var regex in consumer.ResolvedRegexes.Keys.Where(r => !subscribed.Contains(r)).ToList()) consumer.ResolvedRegexes.Remove(regex);
        return result;
    }

    private static bool SameTopology(Dictionary<string, int> a, Dictionary<string, int> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var n) && n == kv.Value);

    private void ComputeTargetAssignment(ConsumerGroup consumer)
    {
        var topicIds = consumer.TopicPartitionCounts.Keys.ToDictionary(n => n, n => _topics.Get(n)!.Id, StringComparer.Ordinal);
        var previous = consumer.Members.Values.ToDictionary(m => m.MemberId,
            m => m.Target.SelectMany(kv => kv.Value.Select(p => (kv.Key, p))).ToHashSet(), StringComparer.Ordinal);
        var target = ServerAssignors.Assign(consumer.Assignor,
            consumer.Members.Values.ToDictionary(m => m.MemberId, m => (IReadOnlyCollection<string>)m.SubscribedTopics, StringComparer.Ordinal),
            consumer.TopicPartitionCounts, topicIds, previous);
        foreach (var m in consumer.Members.Values)
        {
            m.Target = [];
            foreach (var (topicId, p) in target[m.MemberId])
            {
                if (!m.Target.TryGetValue(topicId, out var set)) m.Target[topicId] = set = [];
                set.Add(p);
            }
        }
        consumer.AssignmentEpoch = consumer.GroupEpoch;
    }

    /// <summary>Moves the member one step toward its target; true when its assignment changed.</summary>
    private static bool Reconcile(ConsumerGroup consumer, ConsumerMember member)
    {
        var changed = false;
        // 1. Revoke what the target no longer gives it (the member releases them and reports so).
        var revoking = false;
        foreach (var (topicId, partitions) in member.Assigned)
        {
            var keep = member.Target.TryGetValue(topicId, out var t) ? t : [];
            foreach (var p in partitions.Where(p => !keep.Contains(p)).ToList())
            {
                partitions.Remove(p);
                revoking = true;
                changed = true;
                // Ownership is released only when the member reports it no longer owns the partition.
                consumer.PendingRelease[(topicId, p)] = member.MemberId;
            }
        }
        if (revoking) return true;
        if (consumer.PendingRelease.Values.Contains(member.MemberId)) return false; // still waiting for the member to confirm
        // 2. Nothing to revoke: take the target epoch and every target partition that is free.
        if (member.MemberEpoch != consumer.AssignmentEpoch)
        {
            member.PreviousEpoch = member.MemberEpoch;
            member.MemberEpoch = consumer.AssignmentEpoch;
            changed = true;
        }
        foreach (var (topicId, partitions) in member.Target)
        {
            if (!member.Assigned.TryGetValue(topicId, out var mine)) member.Assigned[topicId] = mine = [];
            foreach (var p in partitions)
            {
                if (mine.Contains(p)) continue;
                if (consumer.Owners.TryGetValue((topicId, p), out var owner) && owner != member.MemberId && consumer.Members.ContainsKey(owner)) continue;
                mine.Add(p);
                consumer.Owners[(topicId, p)] = member.MemberId;
                changed = true;
            }
        }
        return changed;
    }

    private static void ReleaseAll(ConsumerGroup consumer, ConsumerMember member)
    {
        foreach (var (topicId, partitions) in member.Assigned)
            foreach (var p in partitions)
                if (consumer.Owners.TryGetValue((topicId, p), out var owner) && owner == member.MemberId) consumer.Owners.Remove((topicId, p));
        foreach (var key in consumer.PendingRelease.Where(kv => kv.Value == member.MemberId).Select(kv => kv.Key).ToList())
        {
            consumer.PendingRelease.Remove(key);
            if (consumer.Owners.TryGetValue(key, out var owner) && owner == member.MemberId) consumer.Owners.Remove(key);
        }
        member.Assigned = [];
    }

    /// <summary>
    /// Epoch -2 (a static member's temporary leave): the member stays, with its assignment, so nothing moves; its
    /// session keeps running, and only if it expires is the member removed and its partitions reassigned. Partitions
    /// it was revoking are released at once (the member stopped consuming them).
    /// </summary>
    private void LeaveTemporarily(Group group, ConsumerGroup consumer, ConsumerMember member)
    {
        foreach (var key in consumer.PendingRelease.Where(kv => kv.Value == member.MemberId).Select(kv => kv.Key).ToList())
        {
            consumer.PendingRelease.Remove(key);
            if (consumer.Owners.TryGetValue(key, out var owner) && owner == member.MemberId) consumer.Owners.Remove(key);
        }
        member.RebalanceTimer?.Dispose();
        member.RebalanceTimer = null;
        member.MemberEpoch = LeaveStaticEpoch;
        ScheduleConsumerSessionExpiry(group, consumer, member);
    }

    /// <summary>
    /// A static member rejoining (epoch 0, same instance id, new member id) within the session of its temporary leave
    /// takes over its previous incarnation's subscription, target and partitions; the group epoch does not move, so no
    /// other member is disturbed.
    /// </summary>
    private static void TakeOver(ConsumerGroup consumer, ConsumerMember previous, ConsumerMember member)
    {
        previous.SessionTimer?.Dispose();
        previous.RebalanceTimer?.Dispose();
        consumer.Members.Remove(previous.MemberId);
        member.RackId = previous.RackId;
        member.RebalanceTimeoutMs = previous.RebalanceTimeoutMs;
        member.SubscribedTopicNames = previous.SubscribedTopicNames;
        member.SubscribedTopicRegex = previous.SubscribedTopicRegex;
        member.SubscribedTopics = previous.SubscribedTopics;
        member.ServerAssignor = previous.ServerAssignor;
        member.Target = previous.Target;
        member.Assigned = previous.Assigned;
        foreach (var (key, owner) in consumer.Owners.ToList())
            if (owner == previous.MemberId) consumer.Owners[key] = member.MemberId;
    }

    /// <summary>
    /// The rebalance timeout: a member told to revoke partitions must report them released within its rebalance
    /// timeout, or it is fenced (removed) so the partitions can move on. The timer runs from the first heartbeat that
    /// asked for the revocation until the member has released everything it was asked to.
    /// </summary>
    private void ScheduleRevocationTimeout(Group group, ConsumerGroup consumer, ConsumerMember member)
    {
        if (!consumer.PendingRelease.ContainsValue(member.MemberId))
        {
            member.RebalanceTimer?.Dispose();
            member.RebalanceTimer = null;
            return;
        }
        if (member.RebalanceTimer is not null) return;
        var timeout = member.RebalanceTimeoutMs > 0 ? member.RebalanceTimeoutMs : Settings.ConsumerSessionTimeoutMs;
        member.RebalanceTimer = _context.Schedule(TimeSpan.FromMilliseconds(timeout), () =>
        {
            if (!consumer.Members.TryGetValue(member.MemberId, out var current) || !ReferenceEquals(current, member)) return;
            if (!consumer.PendingRelease.ContainsValue(member.MemberId)) return;
            _log.Debug($"group {group.Id}: consumer member {member.MemberId} did not revoke within {timeout} ms; fenced");
            RemoveConsumerMember(group, consumer, member);
            _ = PersistConsumerGroup(group, true);
        });
    }

    private void RemoveConsumerMember(Group group, ConsumerGroup consumer, ConsumerMember member)
    {
        member.SessionTimer?.Dispose();
        member.RebalanceTimer?.Dispose();
        ReleaseAll(consumer, member);
        consumer.Members.Remove(member.MemberId);
        consumer.GroupEpoch++;
        consumer.TopicPartitionCounts = ResolveSubscriptions(consumer);
        ComputeTargetAssignment(consumer);
        group.StateTimestamp = NowMs;
    }

    private void ScheduleConsumerSessionExpiry(Group group, ConsumerGroup consumer, ConsumerMember member)
    {
        var timeout = Settings.ConsumerSessionTimeoutMs;
        member.SessionDeadline = NowMs + timeout;
        var due = TimeSpan.FromMilliseconds(timeout);
        if (member.SessionTimer is { } timer) timer.Change(due);
        else member.SessionTimer = _context.Schedule(due, () =>
        {
            if (!consumer.Members.TryGetValue(member.MemberId, out var current) || !ReferenceEquals(current, member)) return;
            if (NowMs < member.SessionDeadline)
            {
                member.SessionTimer?.Change(TimeSpan.FromMilliseconds(member.SessionDeadline - NowMs));
                return;
            }
            _log.Debug($"group {group.Id}: consumer member {member.MemberId} expired");
            RemoveConsumerMember(group, consumer, member);
            _ = PersistConsumerGroup(group, true);
        });
    }

    /// <summary>ConsumerGroupDescribe: null when the group does not exist or is not a consumer-protocol group.</summary>
    internal ConsumerGroupDescribeResponse.DescribedGroup DescribeConsumerGroup(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group) || group.Consumer is not { } consumer || group.Members.Count > 0)
        {
            return new ConsumerGroupDescribeResponse.DescribedGroup
            {
                GroupId = groupId,
                ErrorCode = (short)ErrorCode.GroupIdNotFound,
                ErrorMessage = group is null ? $"Group {groupId} not found." : $"Group {groupId} is not a consumer group.",
            };
        }
        ConsumerGroupDescribeResponse.Assignment Describe(Dictionary<Guid, SortedSet<int>> assignment) => new()
        {
            TopicPartitions = [.. assignment.Where(kv => kv.Value.Count > 0).Select(kv => new ConsumerGroupDescribeResponse.TopicPartitions
            {
                TopicId = kv.Key,
                TopicName = _topics.Get(kv.Key)?.Name ?? "",
                Partitions = [.. kv.Value],
            })],
        };
        return new ConsumerGroupDescribeResponse.DescribedGroup
        {
            GroupId = groupId,
            GroupState = consumer.StateName,
            GroupEpoch = consumer.GroupEpoch,
            AssignmentEpoch = consumer.AssignmentEpoch,
            AssignorName = consumer.Assignor,
            Members = [.. consumer.Members.Values.Select(m => new ConsumerGroupDescribeResponse.Member
            {
                MemberId = m.MemberId,
                InstanceId = m.InstanceId,
                RackId = m.RackId,
                MemberEpoch = m.MemberEpoch,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SubscribedTopicNames = [.. m.SubscribedTopicNames],
                SubscribedTopicRegex = m.SubscribedTopicRegex,
                Assignment = Describe(m.Assigned),
                TargetAssignment = Describe(m.Target),
            })],
        };
    }
}
