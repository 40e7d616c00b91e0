using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>DescribeProducers v0: the producers each partition remembers (id, epoch, last sequence and timestamp, open transaction's first offset).</summary>
internal sealed class DescribeProducersHandler(BrokerState broker) : ApiHandler<DescribeProducersRequest, DescribeProducersResponse>
{
    public override ApiKey Key => ApiKey.DescribeProducers;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override ValueTask<DescribeProducersResponse?> HandleAsync(RequestContext context, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new DescribeProducersResponse.TopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            foreach (var index in topic.PartitionIndexes)
            {
                var partition = new DescribeProducersResponse.PartitionResponse { PartitionIndex = index };
                topicResponse.Partitions.Add(partition);
                if (!context.AllowsTopic(AclOperation.Read, topic.Name))
                {
                    partition.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                if (broker.Topics.IsLedElsewhere(topic.Name, index))
                {
                    partition.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    continue;
                }
                if (broker.Topics.GetPartition(topic.Name, index) is not { } log)
                {
                    partition.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                partition.ActiveProducers = [.. log.ActiveProducers().Select(p => new DescribeProducersResponse.ProducerState
                {
                    ProducerId = p.ProducerId,
                    ProducerEpoch = p.Epoch,
                    LastSequence = p.LastSequence,
                    LastTimestamp = p.LastTimestampMs,
                    CoordinatorEpoch = p.CoordinatorEpoch,
                    CurrentTxnStartOffset = p.CurrentTxnStartOffset,
                })];
            }
        }
        return new(response);
    }
}
