using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// OffsetForLeaderEpoch v0-4 (KIP-101/279/320): where a leader epoch ends on this leader's log, so a follower that
/// returns (or a consumer after a leader change) can find and drop a divergent suffix. Answers the largest epoch at or
/// below the one asked for and the start offset of the next (or the log end for the current epoch); UNDEFINED (-1/-1)
/// for an epoch older than the log knows. Only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere); v2+ checks the
/// asker's current leader epoch (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). ACLs: a request not from a consumer (replica
/// id other than -1, which is -2 before v3, as in Kafka) needs CLUSTER_ACTION on the cluster (else every partition is CLUSTER_AUTHORIZATION_FAILED); each topic
/// needs DESCRIBE (else TOPIC_AUTHORIZATION_FAILED).
/// </summary>
internal sealed class OffsetForLeaderEpochHandler(BrokerState broker) : ApiHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>
{
    public override ApiKey Key => ApiKey.OffsetForLeaderEpoch;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override ValueTask<OffsetForLeaderEpochResponse?> HandleAsync(RequestContext context, OffsetForLeaderEpochRequest request)
    {
        var response = new OffsetForLeaderEpochResponse();
        var clusterRefused = request.ReplicaId != -1 && !context.AllowsCluster(Security.AclOperation.ClusterAction);
        foreach (var topic in request.Topics)
        {
            var result = new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = topic.Topic };
            response.Topics.Add(result);
            foreach (var p in topic.Partitions)
            {
                var answer = new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition };
                result.Partitions.Add(answer);
                var log = broker.Topics.GetPartition(topic.Topic, p.Partition);
                if (clusterRefused) answer.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
                else if (!context.AllowsTopic(Security.AclOperation.Describe, topic.Topic)) answer.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                else if (!broker.Topics.HasPartition(topic.Topic, p.Partition)) answer.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                else if (broker.Topics.IsPartitionOffline(topic.Topic, p.Partition)) answer.ErrorCode = (short)ErrorCode.KafkaStorageError;
                else if (broker.Topics.IsLedElsewhere(topic.Topic, p.Partition) || log is null) answer.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                else if (context.ApiVersion >= 2 && broker.CheckLeaderEpoch(topic.Topic, p.Partition, p.CurrentLeaderEpoch) is { } epochError) answer.ErrorCode = (short)epochError;
                else
                {
                    var (epoch, end) = log.EndOffsetForEpoch(p.LeaderEpoch);
                    answer.LeaderEpoch = epoch;
                    answer.EndOffset = end;
                }
            }
        }
        return new(response);
    }
}
