using Confluent.Kafka;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;
using Tributary.Server;
using AclBinding = Tributary.Broker.Security.AclBinding;
using AclOperation = Tributary.Broker.Security.AclOperation;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;
using TopicSpecification = Confluent.Kafka.Admin.TopicSpecification;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// Every API the broker serves, asked by a principal (a client certificate, User:CN=alice) with no ACL, with exactly
/// the ACLs Kafka's KafkaApis checks, with PREFIXED ones instead, and with those plus a DENY of the first: refused,
/// allowed, allowed, refused, with Kafka's error codes. The ACLs change under one open connection, so its decision
/// cache must follow each change. Setup goes through a PLAINTEXT listener whose User:ANONYMOUS is a super user.
/// </summary>
public sealed class AuthorizationMatrixTests : IAsyncLifetime
{
    private const string Alice = "User:CN=alice";
    private const string Topic = "acl-topic", Doomed = "acl-doomed", Group = "acl-group", ConsumerGroup = "acl-cgroup", Txn = "acl-txn";
    private const string Prefix = "acl-";

    private readonly TestCertificates _certificates = new();
    private TributaryServer _broker = null!;
    private RawKafkaClient _alice = null!;

    /// <summary>
    /// One API call: the request, the ACLs it needs, Kafka's refusal when the first of them is missing (the others are
    /// granted throughout), and where the answer's error is.
    /// </summary>
    private sealed record Case(string Name, ApiKey Api, short Version, Func<IKafkaRequest> Request, (AclResourceType Type, string Name, AclOperation Op)[] Needs,
        KafkaErrorCode Refusal, Func<RawKafkaClient, IKafkaRequest, short, Task<short>> Send)
    {
        /// <summary>Undoes what an allowed call did that would change the next answer (a topic it created).</summary>
        public string? CreatesTopic { get; init; }
    }

    private static Case C<TResponse>(string name, short version, Func<IKafkaRequest> request, KafkaErrorCode refusal, Func<TResponse, short> error,
        params (AclResourceType, string, AclOperation)[] needs) where TResponse : IKafkaResponse, new() =>
        new(name, (ApiKey)request().ApiKey, version, request, needs, refusal,
            async (client, r, v) => error(await client.SendAsync<TResponse>(r, v)));

    private static (AclResourceType, string, AclOperation) T(AclOperation op, string name = Topic) => (AclResourceType.Topic, name, op);
    private static (AclResourceType, string, AclOperation) G(AclOperation op, string name = Group) => (AclResourceType.Group, name, op);
    private static (AclResourceType, string, AclOperation) X(AclOperation op) => (AclResourceType.TransactionalId, Txn, op);
    private static (AclResourceType, string, AclOperation) K(AclOperation op) => (AclResourceType.Cluster, AclBinding.ClusterName, op);

    private static IEnumerable<Case> Cases()
    {
        const KafkaErrorCode TopicRefused = KafkaErrorCode.TopicAuthorizationFailed, GroupRefused = KafkaErrorCode.GroupAuthorizationFailed,
            ClusterRefused = KafkaErrorCode.ClusterAuthorizationFailed, TxnRefused = KafkaErrorCode.TransactionalIdAuthorizationFailed;
        yield return C<ProduceResponse>("Produce", 9, () => new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 1000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = null }] }],
        }, TopicRefused, r => r.Responses[0].PartitionResponses[0].ErrorCode, T(AclOperation.Write));
        yield return C<ProduceResponse>("Produce transactional", 9, () => new ProduceRequest
        {
            TransactionalId = Txn,
            Acks = 1,
            TimeoutMs = 1000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = null }] }],
        }, TxnRefused, r => r.Responses[0].PartitionResponses[0].ErrorCode, X(AclOperation.Write), T(AclOperation.Write));
        yield return C<FetchResponse>("Fetch", 12, () => new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = 0,
            MinBytes = 0,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Responses[0].Partitions[0].ErrorCode, T(AclOperation.Read));
        yield return C<FetchResponse>("Fetch as follower", 12, () => new FetchRequest
        {
            ReplicaId = 7,
            MaxWaitMs = 0,
            MinBytes = 0,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Responses[0].Partitions[0].ErrorCode, K(AclOperation.ClusterAction));
        yield return C<ListOffsetsResponse>("ListOffsets", 7, () => new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -1, CurrentLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Describe));
        yield return C<MetadataResponse>("Metadata", 12, () => new MetadataRequest { Topics = [new() { Name = Topic }] },
            TopicRefused, r => r.Topics[0].ErrorCode, T(AclOperation.Describe));
        yield return C<MetadataResponse>("Metadata auto-create", 12, () => new MetadataRequest { Topics = [new() { Name = "acl-auto" }], AllowAutoTopicCreation = true },
            TopicRefused, r => r.Topics[0].ErrorCode, T(AclOperation.Create, "acl-auto"), T(AclOperation.Describe, "acl-auto")) with
        { CreatesTopic = "acl-auto" };
        yield return C<OffsetCommitResponse>("OffsetCommit", 8, () => new OffsetCommitRequest
        {
            GroupId = Group,
            GenerationIdOrMemberEpoch = -1,
            MemberId = "",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0, CommittedLeaderEpoch = -1 }] }],
        }, GroupRefused, r => r.Topics[0].Partitions[0].ErrorCode, G(AclOperation.Read), T(AclOperation.Read));
        yield return C<OffsetCommitResponse>("OffsetCommit (topic)", 8, () => new OffsetCommitRequest
        {
            GroupId = Group,
            GenerationIdOrMemberEpoch = -1,
            MemberId = "",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0, CommittedLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Read), G(AclOperation.Read));
        yield return C<OffsetFetchResponse>("OffsetFetch", 7, () => new OffsetFetchRequest { GroupId = Group, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Describe), T(AclOperation.Describe));
        yield return C<OffsetFetchResponse>("OffsetFetch (topic)", 7, () => new OffsetFetchRequest { GroupId = Group, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] },
            TopicRefused, r => r.Topics.Count > 0 ? r.Topics[0].Partitions[0].ErrorCode : r.ErrorCode, T(AclOperation.Describe), G(AclOperation.Describe));
        yield return C<OffsetFetchResponse>("OffsetFetch v8", 8, () => new OffsetFetchRequest { Groups = [new() { GroupId = Group, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }] },
            GroupRefused, r => r.Groups[0].ErrorCode, G(AclOperation.Describe), T(AclOperation.Describe));
        yield return C<FindCoordinatorResponse>("FindCoordinator group", 3, () => new FindCoordinatorRequest { Key = Group, KeyType = 0 },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Describe));
        yield return C<FindCoordinatorResponse>("FindCoordinator transaction", 4, () => new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = [Txn] },
            TxnRefused, r => r.Coordinators[0].ErrorCode, X(AclOperation.Describe));
        yield return C<JoinGroupResponse>("JoinGroup", 7, () => new JoinGroupRequest
        {
            GroupId = Group,
            SessionTimeoutMs = 10_000,
            RebalanceTimeoutMs = 10_000,
            MemberId = "",
            ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = [] }],
        }, GroupRefused, r => r.ErrorCode, G(AclOperation.Read));
        yield return C<HeartbeatResponse>("Heartbeat", 4, () => new HeartbeatRequest { GroupId = Group, GenerationId = 1, MemberId = "m" },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Read));
        yield return C<SyncGroupResponse>("SyncGroup", 5, () => new SyncGroupRequest { GroupId = Group, GenerationId = 1, MemberId = "m", ProtocolType = "consumer", ProtocolName = "range" },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Read));
        yield return C<LeaveGroupResponse>("LeaveGroup", 4, () => new LeaveGroupRequest { GroupId = Group, Members = [new() { MemberId = "m" }] },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Read));
        yield return C<DescribeGroupsResponse>("DescribeGroups", 5, () => new DescribeGroupsRequest { Groups = [Group] },
            GroupRefused, r => r.Groups[0].ErrorCode, G(AclOperation.Describe));
        yield return C<DeleteGroupsResponse>("DeleteGroups", 2, () => new DeleteGroupsRequest { GroupsNames = ["acl-gone"] },
            GroupRefused, r => r.Results[0].ErrorCode, G(AclOperation.Delete, "acl-gone"));
        yield return C<OffsetDeleteResponse>("OffsetDelete", 0, () => new OffsetDeleteRequest
        {
            GroupId = Group,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0 }] }],
        }, GroupRefused, r => r.ErrorCode, G(AclOperation.Delete), T(AclOperation.Read));
        yield return C<CreateTopicsResponse>("CreateTopics", 7, () => new CreateTopicsRequest
        {
            timeoutMs = 5000,
            Topics = [new() { Name = "acl-created", NumPartitions = 1, ReplicationFactor = 1 }],
        }, TopicRefused, r => r.Topics[0].ErrorCode, T(AclOperation.Create, "acl-created"));
        yield return C<DeleteTopicsResponse>("DeleteTopics", 6, () => new DeleteTopicsRequest { TimeoutMs = 5000, Topics = [new() { Name = Doomed }] },
            TopicRefused, r => r.Responses[0].ErrorCode, T(AclOperation.Delete, Doomed));
        yield return C<DeleteRecordsResponse>("DeleteRecords", 2, () => new DeleteRecordsRequest
        {
            TimeoutMs = 5000,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Offset = 0 }] }],
        }, TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Delete));
        yield return C<InitProducerIdResponse>("InitProducerId idempotent", 4, () => new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.IdempotentWrite));
        yield return C<InitProducerIdResponse>("InitProducerId transactional", 4, () => new InitProducerIdRequest { TransactionalId = Txn, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 },
            TxnRefused, r => r.ErrorCode, X(AclOperation.Write));
        yield return C<OffsetForLeaderEpochResponse>("OffsetForLeaderEpoch", 4, () => new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Describe));
        yield return C<OffsetForLeaderEpochResponse>("OffsetForLeaderEpoch as follower", 4, () => new OffsetForLeaderEpochRequest
        {
            ReplicaId = 7,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = -1 }] }],
        }, ClusterRefused, r => r.Topics[0].Partitions[0].ErrorCode, K(AclOperation.ClusterAction), T(AclOperation.Describe));
        yield return C<AddPartitionsToTxnResponse>("AddPartitionsToTxn", 3, () => new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = Txn,
            V3AndBelowProducerId = 1,
            V3AndBelowProducerEpoch = 0,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [0] }],
        }, TxnRefused, r => r.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode, X(AclOperation.Write), T(AclOperation.Write));
        yield return C<AddPartitionsToTxnResponse>("AddPartitionsToTxn (topic)", 3, () => new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = Txn,
            V3AndBelowProducerId = 1,
            V3AndBelowProducerEpoch = 0,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [0] }],
        }, TopicRefused, r => r.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode, T(AclOperation.Write), X(AclOperation.Write));
        yield return C<AddPartitionsToTxnResponse>("AddPartitionsToTxn v4 (brokers)", 4, () => new AddPartitionsToTxnRequest
        {
            Transactions = [new() { TransactionalId = Txn, ProducerId = 1, ProducerEpoch = 0, VerifyOnly = true, Topics = [new() { Name = Topic, Partitions = [0] }] }],
        }, ClusterRefused, r => r.ErrorCode, K(AclOperation.ClusterAction), X(AclOperation.Write), T(AclOperation.Write));
        yield return C<AddOffsetsToTxnResponse>("AddOffsetsToTxn", 3, () => new AddOffsetsToTxnRequest { TransactionalId = Txn, ProducerId = 1, ProducerEpoch = 0, GroupId = Group },
            TxnRefused, r => r.ErrorCode, X(AclOperation.Write), G(AclOperation.Read));
        yield return C<AddOffsetsToTxnResponse>("AddOffsetsToTxn (group)", 3, () => new AddOffsetsToTxnRequest { TransactionalId = Txn, ProducerId = 1, ProducerEpoch = 0, GroupId = Group },
            GroupRefused, r => r.ErrorCode, G(AclOperation.Read), X(AclOperation.Write));
        yield return C<EndTxnResponse>("EndTxn", 3, () => new EndTxnRequest { TransactionalId = Txn, ProducerId = 1, ProducerEpoch = 0, Committed = false },
            TxnRefused, r => r.ErrorCode, X(AclOperation.Write));
        yield return C<WriteTxnMarkersResponse>("WriteTxnMarkers", 1, () => new WriteTxnMarkersRequest
        {
            Markers = [new() { ProducerId = 999_999, ProducerEpoch = 0, TransactionResult = false, CoordinatorEpoch = 0, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }],
        }, ClusterRefused, r => r.Markers[0].Topics[0].Partitions[0].ErrorCode, K(AclOperation.ClusterAction));
        yield return C<TxnOffsetCommitResponse>("TxnOffsetCommit", 3, () => new TxnOffsetCommitRequest
        {
            TransactionalId = Txn,
            GroupId = Group,
            ProducerId = 1,
            ProducerEpoch = 0,
            GenerationId = -1,
            MemberId = "",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0, CommittedLeaderEpoch = -1 }] }],
        }, TxnRefused, r => r.Topics[0].Partitions[0].ErrorCode, X(AclOperation.Write), G(AclOperation.Read), T(AclOperation.Read));
        yield return C<TxnOffsetCommitResponse>("TxnOffsetCommit (group)", 3, () => new TxnOffsetCommitRequest
        {
            TransactionalId = Txn,
            GroupId = Group,
            ProducerId = 1,
            ProducerEpoch = 0,
            GenerationId = -1,
            MemberId = "",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0, CommittedLeaderEpoch = -1 }] }],
        }, GroupRefused, r => r.Topics[0].Partitions[0].ErrorCode, G(AclOperation.Read), X(AclOperation.Write), T(AclOperation.Read));
        yield return C<TxnOffsetCommitResponse>("TxnOffsetCommit (topic)", 3, () => new TxnOffsetCommitRequest
        {
            TransactionalId = Txn,
            GroupId = Group,
            ProducerId = 1,
            ProducerEpoch = 0,
            GenerationId = -1,
            MemberId = "",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0, CommittedLeaderEpoch = -1 }] }],
        }, TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Read), X(AclOperation.Write), G(AclOperation.Read));
        yield return C<DescribeConfigsResponse>("DescribeConfigs topic", 4, () => new DescribeConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = Topic }] },
            TopicRefused, r => r.Results[0].ErrorCode, T(AclOperation.DescribeConfigs));
        yield return C<DescribeConfigsResponse>("DescribeConfigs broker", 4, () => new DescribeConfigsRequest { Resources = [new() { ResourceType = 4, ResourceName = "1" }] },
            ClusterRefused, r => r.Results[0].ErrorCode, K(AclOperation.DescribeConfigs));
        yield return C<AlterConfigsResponse>("AlterConfigs", 2, () => new AlterConfigsRequest
        {
            ValidateOnly = true,
            Resources = [new() { ResourceType = 2, ResourceName = Topic, Configs = [new() { Name = "retention.ms", Value = "100000" }] }],
        }, TopicRefused, r => r.Responses[0].ErrorCode, T(AclOperation.AlterConfigs));
        yield return C<IncrementalAlterConfigsResponse>("IncrementalAlterConfigs", 1, () => new IncrementalAlterConfigsRequest
        {
            ValidateOnly = true,
            Resources = [new() { ResourceType = 4, ResourceName = "", Configs = [new() { Name = "leader.replication.throttled.rate", ConfigOperation = 0, Value = "1000000" }] }],
        }, ClusterRefused, r => r.Responses[0].ErrorCode, K(AclOperation.AlterConfigs));
        yield return C<DescribeLogDirsResponse>("DescribeLogDirs", 4, () => new DescribeLogDirsRequest { Topics = null },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.Describe));
        yield return C<CreatePartitionsResponse>("CreatePartitions", 3, () => new CreatePartitionsRequest
        {
            TimeoutMs = 5000,
            ValidateOnly = true,
            Topics = [new() { Name = Topic, Count = 5 }],
        }, TopicRefused, r => r.Results[0].ErrorCode, T(AclOperation.Alter));
        yield return C<DescribeClientQuotasResponse>("DescribeClientQuotas", 1, () => new DescribeClientQuotasRequest(),
            ClusterRefused, r => r.ErrorCode, K(AclOperation.DescribeConfigs));
        yield return C<AlterClientQuotasResponse>("AlterClientQuotas", 1, () => new AlterClientQuotasRequest
        {
            ValidateOnly = true,
            Entries = [new() { Entity = [new() { EntityType = "client-id", EntityName = "matrix" }], Ops = [new() { Key = "producer_byte_rate", Value = 1000 }] }],
        }, ClusterRefused, r => r.Entries[0].ErrorCode, K(AclOperation.AlterConfigs));
        yield return C<DescribeUserScramCredentialsResponse>("DescribeUserScramCredentials", 0, () => new DescribeUserScramCredentialsRequest { Users = null },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.Describe));
        yield return C<AlterUserScramCredentialsResponse>("AlterUserScramCredentials", 0, () => new AlterUserScramCredentialsRequest
        {
            Deletions = [new() { Name = "matrix-user", Mechanism = 1 }],
        }, ClusterRefused, r => r.Results[0].ErrorCode is var e && e == (short)KafkaErrorCode.ResourceNotFound ? (short)0 : e, K(AclOperation.Alter));
        yield return C<ElectLeadersResponse>("ElectLeaders", 2, () => new ElectLeadersRequest
        {
            ElectionType = 0,
            TimeoutMs = 5000,
            TopicPartitions = [new() { Topic = Topic, Partitions = [0] }],
        }, ClusterRefused, r => r.ErrorCode, K(AclOperation.Alter));
        yield return C<AlterPartitionReassignmentsResponse>("AlterPartitionReassignments", 0, () => new AlterPartitionReassignmentsRequest { TimeoutMs = 5000, Topics = [] },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.Alter));
        yield return C<ListPartitionReassignmentsResponse>("ListPartitionReassignments", 0, () => new ListPartitionReassignmentsRequest { TimeoutMs = 5000, Topics = null },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.Describe));
        yield return C<DescribeProducersResponse>("DescribeProducers", 0, () => new DescribeProducersRequest { Topics = [new() { Name = Topic, PartitionIndexes = [0] }] },
            TopicRefused, r => r.Topics[0].Partitions[0].ErrorCode, T(AclOperation.Read));
        yield return C<DescribeTransactionsResponse>("DescribeTransactions", 0, () => new DescribeTransactionsRequest { TransactionalIds = [Txn] },
            TxnRefused, r => r.TransactionStates[0].ErrorCode, X(AclOperation.Describe));
        yield return C<ConsumerGroupHeartbeatResponse>("ConsumerGroupHeartbeat", 0, () => new ConsumerGroupHeartbeatRequest
        {
            GroupId = ConsumerGroup,
            MemberId = Guid.NewGuid().ToString("N"),
            MemberEpoch = 0,
            RebalanceTimeoutMs = 10_000,
            SubscribedTopicNames = [Topic],
            TopicPartitions = [],
        }, GroupRefused, r => r.ErrorCode, G(AclOperation.Read, ConsumerGroup), T(AclOperation.Describe));
        yield return C<ConsumerGroupHeartbeatResponse>("ConsumerGroupHeartbeat (topic)", 0, () => new ConsumerGroupHeartbeatRequest
        {
            GroupId = ConsumerGroup,
            MemberId = Guid.NewGuid().ToString("N"),
            MemberEpoch = 0,
            RebalanceTimeoutMs = 10_000,
            SubscribedTopicNames = [Topic],
            TopicPartitions = [],
        }, TopicRefused, r => r.ErrorCode, T(AclOperation.Describe), G(AclOperation.Read, ConsumerGroup));
        yield return C<ConsumerGroupDescribeResponse>("ConsumerGroupDescribe", 0, () => new ConsumerGroupDescribeRequest { GroupIds = [ConsumerGroup] },
            GroupRefused, r => r.Groups[0].ErrorCode, G(AclOperation.Describe, ConsumerGroup), T(AclOperation.Describe));
        yield return C<DescribeTopicPartitionsResponse>("DescribeTopicPartitions", 0, () => new DescribeTopicPartitionsRequest
        {
            Topics = [new() { Name = Topic }],
            ResponsePartitionLimit = 100,
        }, TopicRefused, r => r.Topics[0].ErrorCode, T(AclOperation.Describe));
        yield return C<CreateAclsResponse>("CreateAcls", 3, () => new CreateAclsRequest
        {
            Creations = [new() { ResourceType = 2, ResourceName = "acl-other", ResourcePatternType = 3, Principal = "User:bob", Host = "*", Operation = 3, PermissionType = 3 }],
        }, ClusterRefused, r => r.Results[0].ErrorCode, K(AclOperation.Alter));
        yield return C<DescribeAclsResponse>("DescribeAcls", 3, () => new DescribeAclsRequest { ResourceTypeFilter = 1, PatternTypeFilter = 1, Operation = 1, PermissionType = 1 },
            ClusterRefused, r => r.ErrorCode, K(AclOperation.Describe));
        yield return C<DeleteAclsResponse>("DeleteAcls", 3, () => new DeleteAclsRequest
        {
            Filters = [new() { ResourceTypeFilter = 2, ResourceNameFilter = "acl-other", PatternTypeFilter = 1, Operation = 1, PermissionType = 1 }],
        }, ClusterRefused, r => r.FilterResults[0].ErrorCode, K(AclOperation.Alter));
    }

    /// <summary>
    /// APIs that refuse nothing: they need no ACL (ApiVersions, DescribeCluster, and the SASL exchange, which comes before
    /// any principal is known) or leave out what may not be seen (tested below).
    /// </summary>
    private static readonly ApiKey[] Unrefused = [ApiKey.ApiVersions, ApiKey.DescribeCluster, ApiKey.ListGroups, ApiKey.ListTransactions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate];

    public async Task InitializeAsync()
    {
        _broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            ["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SSL:SSL",
            ["ssl.keystore.location"] = _certificates.ServerKeystore(),
            ["ssl.truststore.location"] = _certificates.CaPath,
            ["ssl.client.auth"] = "required",
            ["authorizer.class.name"] = Authorizer.StandardAuthorizerClass,
            ["super.users"] = "User:ANONYMOUS",
        });
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _broker.BootstrapServersFor("PLAINTEXT") }).Build())
            await admin.CreateTopicsAsync([
                new TopicSpecification { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 },
                new TopicSpecification { Name = Doomed, NumPartitions = 1, ReplicationFactor = 1 },
            ]);
        _alice = await RawKafkaClient.ConnectTlsAsync(_broker.BootstrapServersFor("SSL"), _certificates.CaPath, _certificates.Client("CN=alice"));
    }

    public async Task DisposeAsync()
    {
        await _alice.DisposeAsync();
        await _broker.DisposeAsync();
        _certificates.Dispose();
    }

    private Task SetAclsAsync(params AclBinding[] acls) =>
        _broker.MetadataStore.ChangeAclsAsync(acls, [.. _broker.MetadataStore.Image.Acls.Except(acls)], CancellationToken.None);

    private static AclBinding Allow((AclResourceType Type, string Name, AclOperation Op) need, AclPatternType pattern = AclPatternType.Literal) =>
        new(need.Type, pattern == AclPatternType.Literal ? need.Name : PrefixOf(need), pattern, Alice, "*", need.Op, AclPermission.Allow);

    /// <summary>The PREFIXED pattern covering a resource: "acl-" for ours; the whole name for the cluster (Kafka accepts only kafka-cluster there).</summary>
    private static string PrefixOf((AclResourceType Type, string Name, AclOperation Op) need) => need.Type == AclResourceType.Cluster ? need.Name : Prefix;

    [Fact]
    public async Task Every_api_the_broker_serves_is_in_the_matrix_or_refuses_nothing()
    {
        // ApiVersions is built from the registered handlers, so it names exactly what is served.
        var served = (await _alice.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "matrix", ClientSoftwareVersion = "1" }, 3))
            .ApiKeys.Select(k => (ApiKey)k.ApiKey).ToList();
        var covered = Cases().Select(c => c.Api).Concat(Unrefused).ToHashSet();
        Assert.Contains(ApiKey.Produce, served);
        Assert.DoesNotContain(served, k => !covered.Contains(k));
    }

    [Fact]
    public async Task Each_api_refuses_without_acls_allows_exact_and_prefixed_acls_and_a_deny_wins()
    {
        var failures = new List<string>();
        foreach (var c in Cases())
        {
            async Task Expect(string scenario, bool refused)
            {
                KafkaErrorCode error;
                try
                {
                    error = (KafkaErrorCode)await c.Send(_alice, c.Request(), c.Version);
                }
                catch (Exception e) when (e is ArgumentOutOfRangeException or NullReferenceException)
                {
                    failures.Add($"{c.Name} v{c.Version}, {scenario}: the answer lacks the expected field ({e.Message})");
                    return;
                }
                if (refused ? error != c.Refusal : error == c.Refusal || IsAuthorizationError(error))
                    failures.Add($"{c.Name} v{c.Version}, {scenario}: got {error}, expected {(refused ? c.Refusal.ToString() : "no authorization error")}");
                if (c.CreatesTopic is { } created && _broker.State.Topics.Get(created) is not null) await _broker.State.Topics.DeleteAsync(created);
            }
            var first = c.Needs[0];
            var others = c.Needs.Skip(1).Select(n => Allow(n)).ToArray();
            await SetAclsAsync(others);
            await Expect("no ACL", refused: true);
            await SetAclsAsync([Allow(first), .. others]);
            await Expect("literal ACL", refused: false);
            await SetAclsAsync([Allow(first, AclPatternType.Prefixed), .. others]);
            await Expect("prefixed ACL", refused: false);
            await SetAclsAsync([Allow(first), .. others, new AclBinding(first.Type, PrefixOf(first), AclPatternType.Prefixed, "User:*", "*", first.Op, AclPermission.Deny)]);
            await Expect("allowed, and denied by a prefixed DENY for User:*", refused: true);
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task ConsumerGroupDescribe_refuses_a_group_assigned_a_topic_the_caller_may_not_describe()
    {
        const string Described = "acl-described";
        await _broker.Groups.EnsureOffsetsTopicAsync();
        await using (var superUser = await RawKafkaClient.ConnectAsync(_broker.BootstrapServersFor("PLAINTEXT")))
        {
            var joined = await superUser.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
            {
                GroupId = Described,
                MemberId = Guid.NewGuid().ToString("N"),
                MemberEpoch = 0,
                RebalanceTimeoutMs = 10_000,
                SubscribedTopicNames = [Topic],
                TopicPartitions = [],
            }, 1);
            Assert.Equal(0, joined.ErrorCode);
        }
        var request = new ConsumerGroupDescribeRequest { GroupIds = [Described], IncludeAuthorizedOperations = true };

        await SetAclsAsync(Allow(G(AclOperation.Describe, Described)));
        var refused = Assert.Single((await _alice.SendAsync<ConsumerGroupDescribeResponse>(request, 0)).Groups);
        Assert.Equal((short)KafkaErrorCode.TopicAuthorizationFailed, refused.ErrorCode);
        Assert.Equal("The group has described topic(s) that the client is not authorized to describe.", refused.ErrorMessage);
        Assert.Empty(refused.Members);

        await SetAclsAsync(Allow(G(AclOperation.Describe, Described)), Allow(G(AclOperation.AlterConfigs, Described)), Allow(T(AclOperation.Describe)));
        var described = Assert.Single((await _alice.SendAsync<ConsumerGroupDescribeResponse>(request, 0)).Groups);
        Assert.Equal(0, described.ErrorCode);
        var member = Assert.Single(described.Members);
        Assert.Equal(Topic, Assert.Single(member.TargetAssignment.TopicPartitions).TopicName);
        // A group's operations include DESCRIBE_CONFIGS and ALTER_CONFIGS (KIP-848 group configs), as Kafka reports them.
        Assert.Equal((1 << (int)AclOperation.Describe) | (1 << (int)AclOperation.DescribeConfigs) | (1 << (int)AclOperation.AlterConfigs),
            described.AuthorizedOperations);
    }

    private static bool IsAuthorizationError(KafkaErrorCode error) => error is KafkaErrorCode.TopicAuthorizationFailed or KafkaErrorCode.GroupAuthorizationFailed
        or KafkaErrorCode.ClusterAuthorizationFailed or KafkaErrorCode.TransactionalIdAuthorizationFailed;

    [Fact]
    public async Task Listing_shows_only_what_the_principal_may_describe()
    {
        await SetAclsAsync();
        var metadata = await _alice.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeTopicAuthorizedOperations = true, IncludeClusterAuthorizedOperations = true }, 10);
        Assert.Empty(metadata.Topics);
        Assert.Equal(0, metadata.ClusterAuthorizedOperations);

        await SetAclsAsync(Allow(T(AclOperation.Read)), Allow(K(AclOperation.Describe)));
        metadata = await _alice.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeTopicAuthorizedOperations = true, IncludeClusterAuthorizedOperations = true }, 10);
        var topic = Assert.Single(metadata.Topics);
        Assert.Equal(Topic, topic.Name);
        // READ implies DESCRIBE: the bits are READ (3) and DESCRIBE (8); the cluster's DESCRIBE alone.
        Assert.Equal((1 << 3) | (1 << 8), topic.TopicAuthorizedOperations);
        Assert.Equal(1 << 8, metadata.ClusterAuthorizedOperations);

        // Without a named ACL, a group is listed only with DESCRIBE on the cluster.
        await _broker.Groups.EnsureOffsetsTopicAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _broker.BootstrapServersFor("PLAINTEXT") }).Build())
        using (var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _broker.BootstrapServersFor("PLAINTEXT"), GroupId = Group }).Build())
            consumer.Commit([new TopicPartitionOffset(Topic, 0, 0)]);
        await SetAclsAsync();
        Assert.Empty((await _alice.SendAsync<ListGroupsResponse>(new ListGroupsRequest(), 4)).Groups);
        await SetAclsAsync(Allow(G(AclOperation.Describe)));
        Assert.Equal(Group, Assert.Single((await _alice.SendAsync<ListGroupsResponse>(new ListGroupsRequest(), 4)).Groups).GroupId);
        await SetAclsAsync(Allow(K(AclOperation.Describe)));
        Assert.Contains((await _alice.SendAsync<ListGroupsResponse>(new ListGroupsRequest(), 4)).Groups, g => g.GroupId == Group);
    }
}
