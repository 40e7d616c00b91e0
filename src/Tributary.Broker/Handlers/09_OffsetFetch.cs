using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// OffsetFetch v0-9. v0-7 ask for one group (v2+: null topics = every committed partition, and a top-level error);
/// v5+ return the leader epoch; v7+ require_stable: a partition with offsets staged by an undecided transaction
/// answers UNSTABLE_OFFSET_COMMIT (retriable; KIP-447); v8+ ask for
/// several groups at once. A partition without a commit answers offset -1, empty metadata.
/// </summary>
internal sealed class OffsetFetchHandler(GroupCoordinator coordinator) : ApiHandler<OffsetFetchRequest, OffsetFetchResponse>
{
    public override ApiKey Key => ApiKey.OffsetFetch;
    public override short MinVersion => 0;
    public override short MaxVersion => 9;

    protected override async ValueTask<OffsetFetchResponse?> HandleAsync(RequestContext context, OffsetFetchRequest request)
    {
        var response = new OffsetFetchResponse();
        if (context.ApiVersion >= 8)
        {
            foreach (var g in request.Groups)
            {
                if (!context.AllowsGroup(AclOperation.Describe, g.GroupId))
                {
                    response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                    continue;
                }
                var partitions = g.Topics?.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p))).ToList();
                var (error, offsets) = await coordinator.FetchOffsetsAsync(g.GroupId, Describable(context, partitions)).ConfigureAwait(false);
                var group = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)error };
                response.Groups.Add(group);
                foreach (var byTopic in offsets.GroupBy(o => o.Topic))
                {
                    if (partitions is null && !context.AllowsTopic(AclOperation.Describe, byTopic.Key)) continue;
                    group.Topics.Add(new OffsetFetchResponse.OffsetFetchResponseTopics
                    {
                        Name = byTopic.Key,
                        Partitions = [.. byTopic.Select(o => new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = o.Partition,
                            CommittedOffset = o.Offset?.Offset ?? -1,
                            CommittedLeaderEpoch = o.Offset?.LeaderEpoch ?? -1,
                            Metadata = o.Offset?.Metadata ?? "",
                            ErrorCode = request.RequireStable && o.Unstable ? (short)ErrorCode.UnstableOffsetCommit : (short)0,
                        })],
                    });
                }
                AddRefused(context, partitions, group.Topics, (name, indexes) => new OffsetFetchResponse.OffsetFetchResponseTopics
                {
                    Name = name,
                    Partitions = [.. indexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartitions
                    {
                        PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "", ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                    })],
                });
            }
            return response;
        }

        var asked = request.Topics?.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p))).ToList();
        if (!context.AllowsGroup(AclOperation.Describe, request.GroupId))
        {
            // As Kafka's error response: the group's error, and before v2 (no top-level error) on every partition asked.
            response.ErrorCode = (short)ErrorCode.GroupAuthorizationFailed;
            if (context.ApiVersion < 2) AddRefused(context, asked, response.Topics, (name, indexes) => V0Topic(name, indexes, ErrorCode.GroupAuthorizationFailed), all: true);
            return response;
        }
        var (groupError, results) = await coordinator.FetchOffsetsAsync(request.GroupId, Describable(context, asked)).ConfigureAwait(false);
        response.ErrorCode = (short)groupError;
        foreach (var byTopic in results.GroupBy(o => o.Topic))
        {
            if (asked is null && !context.AllowsTopic(AclOperation.Describe, byTopic.Key)) continue;
            response.Topics.Add(new OffsetFetchResponse.OffsetFetchResponseTopic
            {
                Name = byTopic.Key,
                Partitions = [.. byTopic.Select(o => new OffsetFetchResponse.OffsetFetchResponsePartition
                {
                    PartitionIndex = o.Partition,
                    CommittedOffset = o.Offset?.Offset ?? -1,
                    CommittedLeaderEpoch = o.Offset?.LeaderEpoch ?? -1,
                    Metadata = o.Offset?.Metadata ?? "",
                    ErrorCode = context.ApiVersion >= 7 && request.RequireStable && o.Unstable
                        ? (short)ErrorCode.UnstableOffsetCommit
                        : context.ApiVersion < 2 ? (short)groupError : (short)0,
                })],
            });
        }
        AddRefused(context, asked, response.Topics, (name, indexes) => V0Topic(name, indexes, ErrorCode.TopicAuthorizationFailed));
        return response;
    }

    /// <summary>The partitions asked for whose topic the principal may DESCRIBE (null, all of the group's, stays null).</summary>
    private static List<(string Name, int Partition)>? Describable(RequestContext context, List<(string Name, int Partition)>? asked) =>
        asked?.Where(p => context.AllowsTopic(AclOperation.Describe, p.Name)).ToList();

    /// <summary>Answers the partitions asked for whose topic may not be described (or all, for a refused group).</summary>
    private static void AddRefused<T>(RequestContext context, List<(string Name, int Partition)>? asked, List<T> topics,
        Func<string, IEnumerable<int>, T> topic, bool all = false)
    {
        if (asked is null) return;
        foreach (var byTopic in asked.Where(p => all || !context.AllowsTopic(AclOperation.Describe, p.Name)).GroupBy(p => p.Name))
            topics.Add(topic(byTopic.Key, byTopic.Select(p => p.Partition)));
    }

    private static OffsetFetchResponse.OffsetFetchResponseTopic V0Topic(string name, IEnumerable<int> indexes, ErrorCode error) => new()
    {
        Name = name,
        Partitions = [.. indexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartition
        {
            PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "", ErrorCode = (short)error,
        })],
    };
}
