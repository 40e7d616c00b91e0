using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Security;

/// <summary>
/// The ACL check of a config resource (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs), as Kafka's: a topic
/// needs the operation on the topic (TOPIC_AUTHORIZATION_FAILED), a broker on the cluster (CLUSTER_AUTHORIZATION_FAILED).
/// </summary>
internal static class ConfigResourceAcls
{
    /// <summary>Null when allowed (or a resource type the handler refuses on its own), else the error.</summary>
    public static ErrorCode? Refusal(RequestContext context, sbyte resourceType, string resourceName, AclOperation operation) => resourceType switch
    {
        TopicConfigChanger.TopicResource when !context.AllowsTopic(operation, resourceName) => ErrorCode.TopicAuthorizationFailed,
        TopicConfigChanger.BrokerResource when !context.AllowsCluster(operation) => ErrorCode.ClusterAuthorizationFailed,
        _ => null,
    };
}
