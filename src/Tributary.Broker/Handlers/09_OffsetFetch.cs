using Tributary.Broker.Groups;
using Tributary.Broker.Network;
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
                var partitions = g.Topics?.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p))).ToList();
                var (error, offsets) = await coordinator.FetchOffsetsAsync(g.GroupId, partitions).ConfigureAwait(false);
                var group = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)error };
                response.Groups.Add(group);
                foreach (var byTopic in offsets.GroupBy(o => o.Topic))
                {
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
            }
            return response;
        }

        var asked = request.Topics?.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p))).ToList();
        var (groupError, results) = await coordinator.FetchOffsetsAsync(request.GroupId, asked).ConfigureAwait(false);
        response.ErrorCode = (short)groupError;
        foreach (var byTopic in results.GroupBy(o => o.Topic))
        {
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
        return response;
    }
}
