using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Bench.Wire;

public sealed record WireProducerOptions(
    string Bootstrap,
    string Topic,
    string ClientId,
    short Acks = -1,
    int BatchBytes = 1_000_000,
    double LingerMs = 5,
    CompressionCodec Codec = CompressionCodec.None,
    bool Idempotent = false,
    string? TransactionalId = null,
    int MaxInFlightPerConnection = 5);

/// <summary>Acknowledgement of one batch: the send time of each of its records, when the answer came, and its error.</summary>
public delegate void BatchAcknowledged(ReadOnlySpan<long> sendTicks, long ackTicks, ErrorCode error);

/// <summary>
/// A producer written against the wire protocol for the benchmark, shaped like Kafka's Java producer: records are
/// appended straight into a per-partition magic-2 batch; a batch is sent when it reaches the batch size or its
/// linger has passed; up to five Produce requests are in flight per connection (the Java default), so acknowledgements
/// overlap and the broker can share one fdatasync among them. Idempotent producers number each batch's first record;
/// transactional ones add the partitions with records waiting to the transaction (one request) before sending their
/// first batches, and end it with EndTxn once every batch is acknowledged. It exists because librdkafka's idempotent producer lets only one request per partition be in
/// flight and polls in a loop meanwhile (its in-flight cap compares a count of messages with the limit meant for
/// requests), so its figures measure that client, not the broker's cost of idempotence.
/// A failed batch is not retried: the run ends with the broker's error, which a benchmark should report, not hide.
/// </summary>
public sealed class WireProducer : IDisposable
{
    private const int RecordHeaderRoom = 32;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private readonly WireProducerOptions _options;
    private readonly BatchAcknowledged _onAcknowledged;
    private readonly WireConnection _bootstrap;
    private readonly Dictionary<int, Leader> _leaders = [];
    private readonly PartitionState[] _partitions;
    private readonly Dictionary<ApiKey, short> _versions = [];
    private readonly long _lingerTicks;
    private readonly object _drain = new();
    private WireConnection? _coordinator;
    private long _producerId = -1;
    private short _producerEpoch = -1;
    private int _unacknowledged;
    private volatile string? _failure;

    private sealed class Leader(WireConnection connection, int maxInFlight)
    {
        public WireConnection Connection { get; } = connection;
        public SemaphoreSlim Slots { get; } = new(maxInFlight, maxInFlight);
    }

    private sealed class PartitionState(int index, Leader leader)
    {
        public int Index { get; } = index;
        public Leader Leader { get; } = leader;
        public OpenBatch? Open;
        public int NextSequence;
        public bool InTransaction;
    }

    /// <summary>A batch being filled: header room first, then the records, written in place.</summary>
    private sealed class OpenBatch(byte[] buffer, int limit, long[] sendTicks, long firstTicks, long baseTimestampMs)
    {
        public byte[] Buffer = buffer;
        /// <summary>The batch size asked for; the pooled buffer may be larger.</summary>
        public int Limit = limit;
        public long[] SendTicks = sendTicks;
        public int Length = RecordBatchHeader.HeaderSize;
        public int Count;
        public long FirstTicks = firstTicks;
        public long BaseTimestampMs = baseTimestampMs;
        public long LastTimestampDelta;
    }

    public WireProducer(WireProducerOptions options, BatchAcknowledged onAcknowledged)
    {
        _options = options;
        _onAcknowledged = onAcknowledged;
        _lingerTicks = (long)(options.LingerMs * Stopwatch.Frequency / 1000);
        var (host, port) = ParseEndpoint(options.Bootstrap.Split(',')[0]);
        _bootstrap = WireConnection.Connect(host, port, options.ClientId);
        try
        {
            NegotiateVersions();
            _partitions = LoadPartitions();
            if (options.TransactionalId is not null) InitTransactions();
            else if (options.Idempotent) InitProducerId(_bootstrap, null);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int PartitionCount => _partitions.Length;

    /// <summary>Appends one record to its partition's open batch, sending batches that are full or have lingered long enough.</summary>
    public void Append(int partition, ReadOnlySpan<byte> key, bool hasKey, ReadOnlySpan<byte> value)
    {
        if (_failure is { } failure) throw new InvalidOperationException(failure);
        var state = _partitions[partition];
        var now = Stopwatch.GetTimestamp();
        var bodyBound = RecordHeaderRoom + key.Length + value.Length;
        var open = state.Open;
        if (open is not null && (open.Length + bodyBound > open.Limit || now - open.FirstTicks >= _lingerTicks))
        {
            Send(state);
            open = null;
        }
        open ??= state.Open = Open(now, bodyBound);

        var timestampDelta = (now - open.FirstTicks) * 1000 / Stopwatch.Frequency;
        var keyLength = hasKey ? key.Length : -1;
        var bodySize = 1 + RecordVarint.SizeOf(timestampDelta) + RecordVarint.SizeOf(open.Count)
            + RecordVarint.SizeOf(keyLength) + key.Length + RecordVarint.SizeOf(value.Length) + value.Length + 1;
        var span = open.Buffer.AsSpan(open.Length);
        var p = RecordVarint.Write(span, bodySize);
        span[p++] = 0;
        p += RecordVarint.Write(span[p..], timestampDelta);
        p += RecordVarint.Write(span[p..], open.Count);
        p += RecordVarint.Write(span[p..], keyLength);
        key.CopyTo(span[p..]);
        p += key.Length;
        p += RecordVarint.Write(span[p..], value.Length);
        value.CopyTo(span[p..]);
        p += value.Length;
        span[p++] = 0;
        open.Length += p;
        if (open.Count == open.SendTicks.Length)
        {
            var larger = ArrayPool<long>.Shared.Rent(open.Count * 2);
            open.SendTicks.CopyTo(larger, 0);
            ArrayPool<long>.Shared.Return(open.SendTicks);
            open.SendTicks = larger;
        }
        open.SendTicks[open.Count++] = now;
        open.LastTimestampDelta = timestampDelta;
    }

    /// <summary>Sends the open batches whose linger has passed; for a caller that has no record to append for a while.</summary>
    public void SendLingered()
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var state in _partitions)
        {
            if (state.Open is { } open && now - open.FirstTicks >= _lingerTicks) Send(state);
        }
    }

    /// <summary>Sends every open batch and waits until all sent batches are acknowledged.</summary>
    public void Flush(CancellationToken cancellation = default)
    {
        foreach (var state in _partitions)
        {
            if (state.Open is not null) Send(state);
        }
        lock (_drain)
        {
            while (_unacknowledged > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                Monitor.Wait(_drain, TimeSpan.FromMilliseconds(100));
            }
        }
        if (_failure is { } failure) throw new InvalidOperationException(failure);
    }

    /// <summary>Flushes, then commits the transaction; the next records start a new one.</summary>
    public void CommitTransaction()
    {
        if (_coordinator is null) throw new InvalidOperationException("not a transactional producer");
        Flush();
        var response = _coordinator.Call<EndTxnResponse>(new EndTxnRequest
        {
            TransactionalId = _options.TransactionalId!,
            ProducerId = _producerId,
            ProducerEpoch = _producerEpoch,
            Committed = true,
        }, Version(ApiKey.EndTxn), RequestTimeout);
        Check((ErrorCode)response.ErrorCode, "EndTxn");
        foreach (var state in _partitions) state.InTransaction = false;
    }

    private OpenBatch Open(long now, int bodyBound)
    {
        var size = Math.Max(_options.BatchBytes, RecordBatchHeader.HeaderSize + bodyBound);
        return new OpenBatch(ArrayPool<byte>.Shared.Rent(size), size, ArrayPool<long>.Shared.Rent(1024), now, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    private void Send(PartitionState state)
    {
        var batch = state.Open!;
        state.Open = null;
        if (_coordinator is not null && !state.InTransaction)
        {
            // As Kafka's producer does, one request adds every partition that has records waiting, not one round trip
            // (a durable write on the coordinator) per partition.
            var joining = _partitions.Where(p => !p.InTransaction && (p.Open is not null || p == state)).ToList();
            AddPartitionsToTransaction(joining.Select(p => p.Index).ToList());
            foreach (var p in joining) p.InTransaction = true;
        }
        var sequence = -1;
        if (_producerId >= 0)
        {
            sequence = state.NextSequence;
            state.NextSequence = (int)((state.NextSequence + (long)batch.Count) % ((long)int.MaxValue + 1));
        }
        var records = Seal(batch, sequence);
        state.Leader.Slots.Wait();
        lock (_drain) _unacknowledged++;
        var version = Version(ApiKey.Produce);
        var request = new ProduceRequest
        {
            TransactionalId = _options.TransactionalId,
            Acks = _options.Acks,
            TimeoutMs = (int)RequestTimeout.TotalMilliseconds,
            TopicData = [new() { Name = _options.Topic, PartitionData = [new() { Index = state.Index, Records = records }] }],
        };
        state.Leader.Connection.Send(request, version, (frame, error) => Acknowledged(state, batch, frame, error, version));
    }

    /// <summary>Writes the batch header (and compresses the records if asked); returns the batch to send.</summary>
    private ReadOnlyMemory<byte> Seal(OpenBatch batch, int sequence)
    {
        var buffer = batch.Buffer;
        var length = batch.Length;
        if (_options.Codec != CompressionCodec.None)
        {
            var compressed = CompressionCodecs.Compress(_options.Codec, buffer.AsSpan(RecordBatchHeader.HeaderSize, length - RecordBatchHeader.HeaderSize));
            if (RecordBatchHeader.HeaderSize + compressed.Length > buffer.Length)
            {
                // Incompressible records can come out a little larger than they went in.
                var larger = ArrayPool<byte>.Shared.Rent(RecordBatchHeader.HeaderSize + compressed.Length);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = batch.Buffer = larger;
            }
            compressed.CopyTo(buffer.AsSpan(RecordBatchHeader.HeaderSize));
            length = RecordBatchHeader.HeaderSize + compressed.Length;
        }
        var span = buffer.AsSpan(0, length);
        var attributes = (short)((int)_options.Codec | (_options.TransactionalId is not null ? RecordBatchHeader.TransactionalFlag : 0));
        BinaryPrimitives.WriteInt64BigEndian(span, 0);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.PartitionLeaderEpochOffset..], -1);
        span[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.LastOffsetDeltaOffset..], batch.Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseTimestampOffset..], batch.BaseTimestampMs);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.MaxTimestampOffset..], batch.BaseTimestampMs + batch.LastTimestampDelta);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.ProducerIdOffset..], _producerId);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.ProducerEpochOffset..], _producerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BaseSequenceOffset..], sequence);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.RecordsCountOffset..], batch.Count);
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(span));
        return buffer.AsMemory(0, length);
    }

    /// <summary>On the connection's reader thread: reports the batch, frees its in-flight slot and its buffers.</summary>
    private void Acknowledged(PartitionState state, OpenBatch batch, byte[]? frame, Exception? error, short version)
    {
        var ackTicks = Stopwatch.GetTimestamp();
        var code = ErrorCode.UnknownServerError;
        string? message = error?.Message;
        if (frame is not null)
        {
            try
            {
                var response = ClientFrames.ReadResponse<ProduceResponse>(frame, (short)ApiKey.Produce, version, out _);
                var partition = response.Responses.SingleOrDefault()?.PartitionResponses.SingleOrDefault();
                code = partition is null ? ErrorCode.UnknownServerError : (ErrorCode)partition.ErrorCode;
                message = partition?.ErrorMessage ?? (partition is null ? "response without the partition" : null);
            }
            catch (Exception e)
            {
                message = $"unreadable Produce response: {e.Message}";
            }
        }
        if (code != ErrorCode.None)
            _failure ??= $"produce to {_options.Topic}-{state.Index} failed: {code}{(message is null ? "" : $" ({message})")}";
        _onAcknowledged(batch.SendTicks.AsSpan(0, batch.Count), ackTicks, code);
        ArrayPool<byte>.Shared.Return(batch.Buffer);
        ArrayPool<long>.Shared.Return(batch.SendTicks);
        state.Leader.Slots.Release();
        lock (_drain)
        {
            if (--_unacknowledged == 0) Monitor.PulseAll(_drain);
        }
    }

    private void NegotiateVersions()
    {
        // Flexible versions the broker may cap lower; none of these is the KIP-890 part 2 version (Produce v12,
        // AddPartitionsToTxn v4+, EndTxn v5), which changes how a transaction adds partitions.
        (ApiKey Api, short Min, short Preferred)[] wanted =
        [
            (ApiKey.Produce, 3, 11), (ApiKey.Metadata, 1, 12), (ApiKey.InitProducerId, 0, 4),
            (ApiKey.FindCoordinator, 1, 3), (ApiKey.AddPartitionsToTxn, 0, 3), (ApiKey.EndTxn, 0, 3),
        ];
        var response = _bootstrap.Call<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "tributary-bench", ClientSoftwareVersion = "1" }, 3, RequestTimeout);
        Check((ErrorCode)response.ErrorCode, "ApiVersions");
        foreach (var (api, min, preferred) in wanted)
        {
            var offered = response.ApiKeys.FirstOrDefault(k => k.ApiKey == (short)api);
            if (offered is null || offered.MaxVersion < min) continue;
            _versions[api] = Math.Min(preferred, offered.MaxVersion);
        }
    }

    private short Version(ApiKey api) =>
        _versions.TryGetValue(api, out var version) ? version : throw new InvalidOperationException($"the broker does not offer a usable {api} version");

    private PartitionState[] LoadPartitions()
    {
        var metadata = _bootstrap.Call<MetadataResponse>(new MetadataRequest
        {
            Topics = [new() { Name = _options.Topic }],
            AllowAutoTopicCreation = false,
        }, Version(ApiKey.Metadata), RequestTimeout);
        var topic = metadata.Topics.Single();
        Check((ErrorCode)topic.ErrorCode, $"Metadata for {_options.Topic}");
        var brokers = metadata.Brokers.ToDictionary(b => b.NodeId);
        var states = new PartitionState[topic.Partitions.Count];
        foreach (var partition in topic.Partitions)
        {
            Check((ErrorCode)partition.ErrorCode, $"Metadata for {_options.Topic}-{partition.PartitionIndex}");
            if (!_leaders.TryGetValue(partition.LeaderId, out var leader))
            {
                var node = brokers[partition.LeaderId];
                leader = new Leader(WireConnection.Connect(node.Host, node.Port, _options.ClientId), _options.MaxInFlightPerConnection);
                _leaders[partition.LeaderId] = leader;
            }
            states[partition.PartitionIndex] = new PartitionState(partition.PartitionIndex, leader);
        }
        return states;
    }

    private void InitTransactions()
    {
        var found = Retry("FindCoordinator", () =>
        {
            var response = _bootstrap.Call<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = _options.TransactionalId!, KeyType = 1 },
                Version(ApiKey.FindCoordinator), RequestTimeout);
            return ((ErrorCode)response.ErrorCode, response);
        });
        _coordinator = WireConnection.Connect(found.Host, found.Port, _options.ClientId);
        InitProducerId(_coordinator, _options.TransactionalId);
    }

    private void InitProducerId(WireConnection connection, string? transactionalId)
    {
        var response = Retry("InitProducerId", () =>
        {
            var answer = connection.Call<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 60_000 },
                Version(ApiKey.InitProducerId), RequestTimeout);
            return ((ErrorCode)answer.ErrorCode, answer);
        });
        _producerId = response.ProducerId;
        _producerEpoch = response.ProducerEpoch;
    }

    private void AddPartitionsToTransaction(List<int> partitions) => Retry("AddPartitionsToTxn", () =>
    {
        var response = _coordinator!.Call<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = _options.TransactionalId!,
            V3AndBelowProducerId = _producerId,
            V3AndBelowProducerEpoch = _producerEpoch,
            V3AndBelowTopics = [new() { Name = _options.Topic, Partitions = partitions }],
        }, Version(ApiKey.AddPartitionsToTxn), RequestTimeout);
        var error = response.ResultsByTopicV3AndBelow.SelectMany(t => t.ResultsByPartition).Select(r => (ErrorCode)r.PartitionErrorCode)
            .FirstOrDefault(e => e != ErrorCode.None);
        return (error, response);
    });

    /// <summary>Repeats a coordinator call while the answer is one Kafka's clients retry (coordinator loading, a transaction still ending).</summary>
    private static T Retry<T>(string what, Func<(ErrorCode Error, T Response)> call)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)RequestTimeout.TotalSeconds * Stopwatch.Frequency;
        while (true)
        {
            var (error, response) = call();
            if (error == ErrorCode.None) return response;
            if (error is not (ErrorCode.CoordinatorLoadInProgress or ErrorCode.ConcurrentTransactions) || Stopwatch.GetTimestamp() > deadline)
                Check(error, what);
            Thread.Sleep(20);
        }
    }

    private static void Check(ErrorCode error, string what)
    {
        if (error != ErrorCode.None) throw new InvalidOperationException($"{what} failed: {error}");
    }

    private static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), out var port)) throw new ArgumentException($"'{endpoint}' is not host:port");
        return (endpoint[..colon].Trim('[', ']'), port);
    }

    public void Dispose()
    {
        _coordinator?.Dispose();
        foreach (var leader in _leaders.Values) leader.Connection.Dispose();
        _bootstrap.Dispose();
    }
}
