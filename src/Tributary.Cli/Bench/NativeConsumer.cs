namespace Tributary.Cli.Bench;

/// <summary>
/// Reads partitions with librdkafka's C API (rd_kafka_consume_batch), without marshalling each record into .NET:
/// the consume benchmark then measures how fast the broker serves fetches, not the .NET wrapper.
/// </summary>
public sealed unsafe class NativeConsumer : IDisposable
{
    private const int ConsumerType = 1;
    private const long OffsetBeginning = -2;
    private const int ErrPartitionEof = -191;
    private readonly LibrdkafkaApi _api = LibrdkafkaApi.Instance;
    private readonly IntPtr _handle;
    private readonly IntPtr _topic;
    private readonly List<int> _started = [];
    private readonly LibrdkafkaMessage*[] _batch = new LibrdkafkaMessage*[10_000];
    private readonly byte* _topicName;
    private IntPtr _queue;

    /// <summary>Sees each consumed record's value; the span is valid only during the call.</summary>
    public delegate void PayloadVisitor(ReadOnlySpan<byte> value);

    public NativeConsumer(IReadOnlyDictionary<string, string> config, string topic)
    {
        _handle = _api.NewClient(ConsumerType, _api.NewConfig(config));
        // One process-lifetime UTF-8 copy of the name serves the topic handle and every watermark query.
        _topicName = LibrdkafkaApi.Utf8(topic);
        _topic = _api.TopicNew(_handle, _topicName, IntPtr.Zero);
    }

    /// <summary>The partition's high watermark, asked of the broker.</summary>
    public long HighWatermark(int partition, int timeoutMs)
    {
        long low, high;
        var error = _api.QueryWatermarkOffsets(_handle, _topicName, partition, &low, &high, timeoutMs);
        return error == 0 ? high : throw new InvalidOperationException($"rd_kafka_query_watermark_offsets failed for partition {partition}: error {error}");
    }

    /// <summary>Starts reading a partition at <paramref name="offset"/> into the one queue that <see cref="ConsumeQueue"/> drains.</summary>
    public void StartOnQueue(int partition, long offset)
    {
        if (_queue == IntPtr.Zero) _queue = _api.QueueNew(_handle);
        if (_api.ConsumeStartQueue(_topic, partition, offset, _queue) != 0)
            throw new InvalidOperationException($"rd_kafka_consume_start_queue failed for partition {partition}: error {_api.LastError()}");
        _started.Add(partition);
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for a record on the shared queue, then takes whatever else is ready
    /// without waiting, handing each record's value to <paramref name="visit"/>; returns how many. (A batch call with
    /// a timeout would wait for a full batch, which is throughput's choice and adds that wait to every latency.)
    /// </summary>
    public int ConsumeQueue(int timeoutMs, PayloadVisitor visit)
    {
        var first = _api.ConsumeQueue(_queue, timeoutMs);
        if (first == null) return 0;
        var records = Visit(first, visit);
        fixed (LibrdkafkaMessage** batch = _batch)
        {
            var n = (int)_api.ConsumeBatchQueue(_queue, 0, batch, (nuint)_batch.Length);
            for (var i = 0; i < n; i++) records += Visit(batch[i], visit);
        }
        return records;
    }

    private int Visit(LibrdkafkaMessage* message, PayloadVisitor visit)
    {
        var ok = message->Err == 0;
        if (ok) visit(new ReadOnlySpan<byte>((void*)message->Payload, (int)message->Length));
        _api.MessageDestroy(message);
        return ok ? 1 : 0;
    }

    public void StartFromBeginning(int partition)
    {
        if (_api.ConsumeStart(_topic, partition, OffsetBeginning) != 0)
            throw new InvalidOperationException($"rd_kafka_consume_start failed for partition {partition}: error {_api.LastError()}");
        _started.Add(partition);
    }

    /// <summary>Takes up to one batch of a partition's records: counts, payload bytes, and the offset after the last one (-1 if none).</summary>
    public (int Records, long Bytes, long NextOffset, bool Eof) ConsumeBatch(int partition, int timeoutMs)
    {
        int records = 0;
        long bytes = 0, next = -1;
        var eof = false;
        fixed (LibrdkafkaMessage** batch = _batch)
        {
            var n = (int)_api.ConsumeBatch(_topic, partition, timeoutMs, batch, (nuint)_batch.Length);
            for (var i = 0; i < n; i++)
            {
                var message = batch[i];
                if (message->Err == 0)
                {
                    records++;
                    bytes += (long)message->Length;
                    next = message->Offset + 1;
                }
                else if (message->Err == ErrPartitionEof)
                {
                    eof = true;
                    next = message->Offset;
                }
                _api.MessageDestroy(message);
            }
        }
        return (records, bytes, next, eof);
    }

    public void Dispose()
    {
        foreach (var partition in _started) _api.ConsumeStop(_topic, partition);
        if (_queue != IntPtr.Zero) _api.QueueDestroy(_queue);
        _api.TopicDestroy(_topic);
        _api.Destroy(_handle);
    }
}
