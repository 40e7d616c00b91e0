using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DeleteRecords v0-2: moves a partition's log start offset forward (-1 means the high watermark); records below it
/// are no longer served and whole segments below it are deleted. The low watermark returned is the new start.
/// </summary>
internal sealed class DeleteRecordsHandler(BrokerState broker) : ApiHandler<DeleteRecordsRequest, DeleteRecordsResponse>
{
    public override ApiKey Key => ApiKey.DeleteRecords;
    public override short MinVersion => 0;
    public override short MaxVersion => 2;

    protected override ValueTask<DeleteRecordsResponse?> HandleAsync(RequestContext context, DeleteRecordsRequest request)
    {
        var response = new DeleteRecordsResponse();
        foreach (var topic in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = topic.Name };
            response.Topics.Add(topicResult);
            var owned = broker.Topics.Get(topic.Name) is { } info && InternalTopics.IsOwned(info);
            foreach (var p in topic.Partitions)
            {
                var result = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(result);
                if (!context.AllowsTopic(AclOperation.Delete, topic.Name))
                {
                    result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                if (owned)
                {
                    // As Kafka: "Cannot delete records of internal topic"; their state would be lost with them.
                    result.ErrorCode = (short)ErrorCode.InvalidTopicException;
                    continue;
                }
                var log = broker.Topics.GetPartition(topic.Name, p.PartitionIndex);
                if (broker.Topics.IsPartitionOffline(topic.Name, p.PartitionIndex))
                {
                    result.ErrorCode = (short)ErrorCode.KafkaStorageError; // its log directory is offline
                    continue;
                }
                if (broker.Topics.IsLedElsewhere(topic.Name, p.PartitionIndex))
                {
                    result.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    continue;
                }
                if (log is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                var target = p.Offset == -1 ? log.HighWatermark : p.Offset;
                if (target < 0 || target > log.HighWatermark)
                {
                    result.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    continue;
                }
                try
                {
                    if (target > log.LogStartOffset) log.DeleteRecordsBefore(target);
                    result.LowWatermark = log.LogStartOffset;
                }
                catch (StorageException e)
                {
                    result.ErrorCode = (short)e.Error.ToErrorCode();
                }
            }
        }
        return new(response);
    }
}
