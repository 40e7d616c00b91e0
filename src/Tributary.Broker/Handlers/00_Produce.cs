using System.Diagnostics;
using System.Runtime.InteropServices;
using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// Produce v0-12. Batches go to the partition log as the bytes the client sent: the log validates headers, CRCs and
/// that each batch holds the records it announces (walked in place; compressed ones decompressed once, bounded), and
/// assigns offsets by patching base offsets in place. v3 and later carry record batches (magic 2) only; v0-v2 carry the
/// old message sets (magic 0 and 1), up-converted to one record batch before anything else (<see cref="UpConvert"/>).
/// All partitions of a request are appended in order before any is awaited, so their fsyncs are shared.
/// acks=0 gets no response at all, as in Kafka. A record without a key sent to a compacted topic (cleanup.policy
/// contains compact) refuses the partition's records with INVALID_RECORD and record_errors, as Kafka's LogValidator.
/// Exactly-once: the log checks producer sequences and epochs (a retried batch is answered with its original offsets);
/// control batches from clients are refused (INVALID_RECORD); a transactional batch must come from the current epoch
/// of a transaction that added the partition (KIP-890 part 1 server-side defence), else INVALID_TXN_STATE. When the
/// transaction's coordinator is another broker, the first transactional batch of a transaction in a partition is held
/// until that broker confirms (a verify-only AddPartitionsToTxn for all such partitions of the request); later batches,
/// whose transaction the log already holds open, are not asked about. A coordinator that cannot be asked gives
/// NOT_ENOUGH_REPLICAS (retried by clients) and nothing is appended. v12 (transaction version 2, KIP-890 part 2; v11's
/// fields): the producer sends no AddPartitionsToTxn, so its first batch in a partition adds the partition instead.
/// ACLs: WRITE on the transactional id of a transactional request (else every partition is
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and WRITE on each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED).
/// </summary>
internal sealed class ProduceHandler(BrokerState broker, Transactions.TransactionCoordinator? transactions = null) : ApiHandler<ProduceRequest, ProduceResponse>
{
    public override ApiKey Key => ApiKey.Produce;
    public override short MinVersion => 0;
    public override short MaxVersion => 12;

    protected override async ValueTask<ProduceResponse?> HandleAsync(RequestContext context, ProduceRequest request)
    {
        var response = new ProduceResponse();
        var appends = new List<PendingAppend>();
        List<Unverified>? unverified = null;
        var coordinator = -1;
        var acksValid = request.Acks is -1 or 0 or 1;
        var transactionalIdAllowed = request.TransactionalId is not { } transactionalId || context.AllowsTransactionalId(AclOperation.Write, transactionalId);
        var produced = 0L;
        foreach (var topicData in request.TopicData)
        {
            foreach (var partitionData in topicData.PartitionData) produced += partitionData.Records?.Length ?? 0;
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicData.Name };
            response.Responses.Add(topicResponse);
            var refused = !transactionalIdAllowed ? ErrorCode.TransactionalIdAuthorizationFailed
                : !context.AllowsTopic(AclOperation.Write, topicData.Name) ? ErrorCode.TopicAuthorizationFailed : ErrorCode.None;
            if (refused != ErrorCode.None)
            {
                foreach (var partitionData in topicData.PartitionData)
                    topicResponse.PartitionResponses.Add(new ProduceResponse.PartitionProduceResponse { Index = partitionData.Index, BaseOffset = -1, ErrorCode = (short)refused });
                continue;
            }
            var topic = broker.Topics.Get(topicData.Name);
            if (acksValid && topic is not null && InternalTopics.IsOwned(topic))
            {
                // Only the broker writes its internal topics (as Kafka: "Cannot append to internal topic").
                foreach (var partitionData in topicData.PartitionData)
                {
                    topicResponse.PartitionResponses.Add(new ProduceResponse.PartitionProduceResponse
                    {
                        Index = partitionData.Index,
                        BaseOffset = -1,
                        ErrorCode = (short)ErrorCode.InvalidTopicException,
                        ErrorMessage = $"Cannot append to internal topic {topic.Name}",
                    });
                }
                continue;
            }
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = new ProduceResponse.PartitionProduceResponse { Index = partitionData.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(result);
                var log = topic is null ? null : broker.Topics.GetPartition(topic.Name, partitionData.Index);
                var data = partitionData.Records;
                (ErrorCode Error, string Message)? legacy = null;
                if (context.ApiVersion < 3 && log is not null && data is { Length: > 0 } set) legacy = UpConvert(set, log, ref data);
                if (!acksValid) result.ErrorCode = (short)ErrorCode.InvalidRequiredAcks;
                else if (topic is not null && broker.Topics.IsPartitionOffline(topic.Name, partitionData.Index)) result.ErrorCode = (short)ErrorCode.KafkaStorageError;
                else if (topic is not null && broker.Topics.IsLedElsewhere(topic.Name, partitionData.Index)) result.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                else if (log is null) result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                else if (legacy is var (legacyError, legacyMessage)) (result.ErrorCode, result.ErrorMessage) = ((short)legacyError, legacyMessage);
                else if (data is not { Length: > 0 } records) result.ErrorCode = (short)ErrorCode.InvalidRecord;
                else if (!IsOneBatch(records.Span)) (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRecord, OneBatchOnly);
                else if (TransactionCheck(request.TransactionalId, topic!.Name, partitionData.Index, log, records, context.ApiVersion, out var remote) is { } txnError)
                    (result.ErrorCode, result.ErrorMessage) = ((short)txnError.Error, txnError.Message);
                else if (remote != -1)
                {
                    // The first batch of the transaction here, whose coordinator is another broker (or, to add the partition
                    // with transaction version 2, this one): asked below, once for all.
                    coordinator = remote;
                    (unverified ??= []).Add(new Unverified(result, topic, log, partitionData.Index, records));
                }
                else Admit(result, topic, log, partitionData.Index, records, request, context, appends);
            }
        }
        if (unverified is not null) await VerifyThenAdmitAsync(unverified, coordinator, request, context, appends).ConfigureAwait(false);
        var waitStarted = Stopwatch.GetTimestamp();
        foreach (var (result, append, topicName, partition, bytes, minInSync) in appends)
        {
            try
            {
                var appended = await append.ConfigureAwait(false);
                broker.Metrics.Produced(topicName, bytes, (int)(appended.LastOffset - appended.BaseOffset + 1));
                result.BaseOffset = appended.BaseOffset;
                result.LogAppendTimeMs = appended.LogAppendTime;
                result.LogStartOffset = appended.LogStartOffset;
                // acks=all on a replicated partition: answered once every in-sync replica holds the records.
                if (request.Acks == -1 && broker.Replicas is { } replicas
                    && await replicas.WaitForReplicationAsync(topicName, partition, appended.LastOffset + 1, minInSync, request.TimeoutMs, context.Cancellation).ConfigureAwait(false) is var replicated
                    && replicated != ErrorCode.None)
                {
                    result.ErrorCode = (short)replicated;
                    result.BaseOffset = -1;
                }
            }
            catch (StorageException e)
            {
                result.ErrorCode = (short)e.Error.ToErrorCode();
                result.ErrorMessage = e.Message;
                result.RecordErrors = [.. e.RecordErrors.Select(r => new ProduceResponse.BatchIndexAndErrorMessage { BatchIndex = r.BatchIndex, BatchIndexErrorMessage = r.Message })];
                if (e.Error == StorageError.StorageFailure) broker.Log.Error($"append failed: {e.Message}");
            }
        }
        if (appends.Count > 0 && request.Acks != 0) broker.Metrics.ProduceWaited(waitStarted);
        // producer_byte_rate: the bytes sent count whether or not they were appended, as Kafka counts the request's size.
        if (broker.Quotas.RecordProduce(context.Principal, context.ClientId, produced) is > 0 and var throttle)
        {
            response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, throttle);
            context.ThrottleMs = Math.Max(context.ThrottleMs, throttle);
        }
        AddLeaderHints(response, context.Listener);
        foreach (var topicResponse in response.Responses)
            foreach (var partition in topicResponse.PartitionResponses)
                if (partition.ErrorCode != 0) broker.Metrics.Error((short)ApiKey.Produce, partition.ErrorCode);
        return request.Acks == 0 ? null : response;
    }

    /// <summary>
    /// Produce v0-2 carries message sets (magic 0 or 1): they become one record batch, as Kafka 3 up-converts them on
    /// append, so everything after (validation, idempotence checks, the log) sees a batch. A message set whose CRC or
    /// layout does not hold is CORRUPT_MESSAGE; one that expands past the partition's bound, MESSAGE_TOO_LARGE.
    /// </summary>
    private static (ErrorCode, string)? UpConvert(ReadOnlyMemory<byte> set, PartitionLog log, ref ReadOnlyMemory<byte>? data)
    {
        try
        {
            data = LegacyMessageSet.ToRecordBatch(set.Span, CompressionCodecs.MaxDecompressedBytes(log.Config.MaxMessageBytes));
            return null;
        }
        catch (CorruptMessageException e)
        {
            return (ErrorCode.CorruptMessage, e.Message);
        }
        catch (DecompressionLimitException e)
        {
            return (ErrorCode.MessageTooLarge, e.Message);
        }
        catch (InvalidRecordException e)
        {
            return (ErrorCode.InvalidRecord, e.Message);
        }
    }

    /// <summary>
    /// Record validation for a topic that asks for it; null when the batch may be appended. Such a topic never takes
    /// unvalidated bytes: without a validator the answer is LEADER_NOT_AVAILABLE while the registry starts (producers
    /// retry), INVALID_RECORD saying why when it is disabled or failed to start. A refusal by a validator that is
    /// catching up is LEADER_NOT_AVAILABLE too.
    /// </summary>
    private (short, string)? Validate(TopicInfo topic, ReadOnlyMemory<byte> records)
    {
        var parts = RecordValidation.Parts(topic.Configs);
        if (!parts.Any) return null;
        if (broker.SchemaValidator is not { } validator) return CannotValidate(topic.Name);
        if (validator.Validate(topic.Name, parts, records) is not { } invalid) return null;
        // Checked against a registry that is still catching up: the id may be one registered a moment ago elsewhere.
        return validator.IsCatchingUp
            ? ((short)ErrorCode.LeaderNotAvailable, $"{invalid} (the schema registry on this broker is catching up with _schemas; retry)")
            : ((short)ErrorCode.InvalidRecord, invalid);
    }

    private (short, string) CannotValidate(string topic) => broker.SchemaRegistryStatus switch
    {
        SchemaRegistryStatus.Starting => ((short)ErrorCode.LeaderNotAvailable, $"Topic {topic} validates records against the schema registry, which is still loading; retry."),
        SchemaRegistryStatus.Failed => ((short)ErrorCode.InvalidRecord, $"Topic {topic} validates records against the schema registry, which failed to start (see the broker log)."),
        _ => ((short)ErrorCode.InvalidRecord, $"Topic {topic} validates records against the schema registry, which is disabled on this broker (schema.registry.enable=false)."),
    };

    /// <summary>
    /// KIP-951: a NOT_LEADER_OR_FOLLOWER answer names the partition's current leader and epoch, and the response carries
    /// that leader's endpoint, so the client moves on without a metadata round trip (the fields exist from v10).
    /// </summary>
    private void AddLeaderHints(ProduceResponse response, string listener)
    {
        var image = broker.Topics.Image;
        var leaders = new HashSet<int>();
        foreach (var topic in response.Responses)
            foreach (var p in topic.PartitionResponses)
            {
                if (p.ErrorCode != (short)ErrorCode.NotLeaderOrFollower || image.Partition(topic.Name, p.Index) is not { Leader: >= 0 } state) continue;
                p.CurrentLeader = new ProduceResponse.LeaderIdAndEpoch { LeaderId = state.Leader, LeaderEpoch = state.LeaderEpoch };
                leaders.Add(state.Leader);
            }
        foreach (var id in leaders)
            if (image.Brokers.TryGetValue(id, out var b) && b.EndpointFor(listener) is var (host, port))
                response.NodeEndpoints.Add(new ProduceResponse.NodeEndpoint { NodeId = b.NodeId, Host = host, Port = port, Rack = b.Rack });
    }

    /// <summary>The partition's in-sync replicas, for min.insync.replicas.</summary>
    private int InSync(string topic, int partition) => broker.Topics.Image.Partition(topic, partition)?.Isr.Length ?? 1;

    /// <summary>Kafka's message when acks=all meets an ISR smaller than min.insync.replicas.</summary>
    private static string NotEnoughReplicas(int isr, int minIsr, string topic, int partition) =>
        $"The size of the current ISR Set({isr}) is insufficient to satisfy the min.isr requirement of {minIsr} for partition {topic}-{partition}";

    private const string OneBatchOnly = "Produce requests with version 3 and above must contain exactly one record batch per partition";

    /// <summary>
    /// Kafka's rule for Produce v3+ (the versions served): one record batch per partition, so the exactly-once checks
    /// of its header cover everything written.
    /// </summary>
    private static bool IsOneBatch(ReadOnlySpan<byte> records) =>
        records.Length < Protocol.Records.RecordBatchHeader.HeaderSize || Protocol.Records.RecordBatchHeader.ReadTotalSize(records) >= records.Length;

    /// <summary>Produce v12 is transaction version 2 (KIP-890 part 2; v11's fields): transactional writes add their partitions.</summary>
    private bool AddsPartitions(short version) => version >= 12 && transactions is { Settings.Version2: true };

    /// <summary>
    /// Exactly-once checks on the first batch's header (one producer writes one request); null when it passes. A
    /// transactional batch must belong to the producer's open transaction, which must hold the partition (KIP-890 part
    /// 1): checked here when this broker coordinates the request's transactional id; otherwise
    /// <paramref name="coordinator"/> names the broker that does and the caller asks it — unless the log already holds
    /// the producer's open transaction under this epoch, so only a transaction's first batch in a partition is asked
    /// about. Errors are Kafka's (<see cref="Transactions.TransactionCoordinator.ProduceError"/>).
    /// </summary>
    private (ErrorCode Error, string? Message)? TransactionCheck(string? transactionalId, string topic, int partition, PartitionLog log,
        ReadOnlyMemory<byte> records, short version, out int coordinator)
    {
        coordinator = -1;
        if (records.Length < Protocol.Records.RecordBatchHeader.HeaderSize) return null;
        var header = new Protocol.Records.RecordBatchHeader(records.Span);
        if (header.Magic != 2) return null;
        if (header.IsControl) return (ErrorCode.InvalidRecord, null);
        if (!header.IsTransactional || transactions is null) return null;
        var error = transactions.CheckTransactionalWrite(transactionalId, header.ProducerId, header.ProducerEpoch, topic, partition, out coordinator);
        // Transaction version 2: the first write to a partition adds it to the transaction, on this broker's coordinator too.
        if (AddsPartitions(version) && error == ErrorCode.InvalidTxnState && coordinator < 0)
            (error, coordinator) = (ErrorCode.None, Transactions.TransactionCoordinator.LocalCoordinator);
        if (error != ErrorCode.None) return Transactions.TransactionCoordinator.ProduceError(error, version);
        if (coordinator != -1 && log.HasOngoingTransaction(header.ProducerId, header.ProducerEpoch)) coordinator = -1;
        return null;
    }

    /// <summary>
    /// Asks the transaction coordinator (another broker) about the partitions whose first transactional batch this
    /// request carries, in one verify-only AddPartitionsToTxn, then admits those it confirms. One producer writes one
    /// request: a batch of another producer id or epoch than the first is refused, as Kafka refuses them.
    /// </summary>
    private async ValueTask VerifyThenAdmitAsync(List<Unverified> unverified, int coordinator, ProduceRequest request, RequestContext context, List<PendingAppend> appends)
    {
        var first = new Protocol.Records.RecordBatchHeader(unverified[0].Records.Span);
        var (producerId, epoch) = (first.ProducerId, first.ProducerEpoch);
        var asked = new List<(string Topic, int Partition)>(unverified.Count);
        var same = new List<Unverified>(unverified.Count);
        foreach (var u in unverified)
        {
            var header = new Protocol.Records.RecordBatchHeader(u.Records.Span);
            if (header.ProducerId != producerId || header.ProducerEpoch != epoch)
            {
                (u.Result.ErrorCode, u.Result.ErrorMessage) = ((short)ErrorCode.InvalidProducerIdMapping, "Transactional records contained more than one producer ID");
                continue;
            }
            asked.Add((u.Topic.Name, u.Partition));
            same.Add(u);
        }
        var errors = await transactions!.AddOrVerifyAsync(coordinator, AddsPartitions(context.ApiVersion), request.TransactionalId!, producerId, epoch, asked, context.Cancellation)
            .ConfigureAwait(false);
        for (var i = 0; i < same.Count; i++)
        {
            var u = same[i];
            if (errors[i] == ErrorCode.None) Admit(u.Result, u.Topic, u.Log, u.Partition, u.Records, request, context, appends);
            else
            {
                var (error, message) = Transactions.TransactionCoordinator.ProduceError(errors[i], context.ApiVersion);
                (u.Result.ErrorCode, u.Result.ErrorMessage) = ((short)error, message);
            }
        }
    }

    /// <summary>The last checks of a partition's records (validation, min.insync.replicas), then its append is started.</summary>
    private void Admit(ProduceResponse.PartitionProduceResponse result, TopicInfo topic, PartitionLog log, int partition, ReadOnlyMemory<byte> records,
        ProduceRequest request, RequestContext context, List<PendingAppend> appends)
    {
        if (Validate(topic, records) is { } invalid) (result.ErrorCode, result.ErrorMessage) = invalid;
        else if (request.Acks == -1 && InSync(topic.Name, partition) is var isr && isr < log.Config.MinInSyncReplicas)
            (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.NotEnoughReplicas, NotEnoughReplicas(isr, log.Config.MinInSyncReplicas, topic.Name, partition));
        else appends.Add(new PendingAppend(result, StartAppend(log, MemoryMarshal.AsMemory(records), allowZstd: context.ApiVersion >= 7, context.Cancellation), topic.Name, partition,
            records.Length, log.Config.MinInSyncReplicas));
    }

    /// <summary>A partition's append under way, to be awaited (and replicated) before the response.</summary>
    private readonly record struct PendingAppend(ProduceResponse.PartitionProduceResponse Result, ValueTask<AppendResult> Append, string Topic, int Partition, int Bytes, int MinInSync);

    /// <summary>A partition whose first transactional batch waits for the transaction coordinator's word.</summary>
    private readonly record struct Unverified(ProduceResponse.PartitionProduceResponse Result, TopicInfo Topic, PartitionLog Log, int Partition, ReadOnlyMemory<byte> Records);

    private static ValueTask<AppendResult> StartAppend(PartitionLog log, Memory<byte> records, bool allowZstd, CancellationToken cancellation)
    {
        try
        {
            return log.AppendAsync(records, allowZstd, cancellation);
        }
        catch (StorageException e)
        {
            return ValueTask.FromException<AppendResult>(e);
        }
    }
}
