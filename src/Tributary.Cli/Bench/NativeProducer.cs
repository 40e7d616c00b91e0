using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tributary.Cli.Bench;

/// <summary>
/// A producer that calls librdkafka's C API directly — the same librdkafka binary Confluent.Kafka ships and loads.
/// Confluent.Kafka's .NET layer costs about a microsecond per record (marshalling each message and its delivery
/// report), which caps one .NET producer well below what librdkafka and the broker can do; calling
/// <c>rd_kafka_produce</c> with a copied payload and the send time as the per-message opaque removes that layer, so
/// the benchmark measures the broker. Delivery reports arrive on the thread that calls <see cref="Poll"/>.
/// Without a transactional.id they come as events, a batch of reports per call into librdkafka: a callback per
/// record would cross from native into managed code for each one, which at millions of records a second is a
/// measurable share of the client's CPU, and that client shares the machine with the broker being measured.
/// (A transactional producer keeps the callback: commit_transaction serves reports on the committing thread.)
/// </summary>
public sealed unsafe class NativeProducer : IDisposable
{
    private const int ProducerType = 0;
    private const int MsgFlagCopy = 0x2;
    private const int ErrQueueFull = -184;
    private const int ErrTimedOut = -185;
    private const int EventDeliveryReport = 0x1;

    private readonly LibrdkafkaApi _api;
    private readonly IntPtr _handle;
    private readonly IntPtr _topic;
    private readonly GCHandle _self;
    private readonly IntPtr _mainQueue;
    private readonly LibrdkafkaMessage*[] _reports = new LibrdkafkaMessage*[4096];

    /// <summary>Called on the polling thread for each delivery report: error code (0 = success) and the send timestamp.</summary>
    public Action<int, long>? OnDelivery { get; set; }

    public NativeProducer(IReadOnlyDictionary<string, string> config, string topic)
    {
        _api = LibrdkafkaApi.Instance;
        var conf = _api.NewConfig(config);
        _self = GCHandle.Alloc(this);
        _api.ConfSetOpaque(conf, GCHandle.ToIntPtr(_self));
        var batchedReports = !config.ContainsKey("transactional.id");
        if (batchedReports) _api.ConfSetEvents(conf, EventDeliveryReport);
        else _api.ConfSetDrMsgCb(conf, &OnDeliveryReport);
        try
        {
            _handle = _api.NewClient(ProducerType, conf);
        }
        catch
        {
            _self.Free();
            throw;
        }
        if (batchedReports) _mainQueue = _api.QueueGetMain(_handle);
        _topic = _api.TopicNew(_handle, LibrdkafkaApi.Utf8(topic), IntPtr.Zero);
    }

    /// <summary>Queues one record; false when librdkafka's queue is full (poll, then retry).</summary>
    public bool TryProduce(int partition, ReadOnlySpan<byte> value, long sendTimestamp)
    {
        fixed (byte* payload = value)
        {
            if (_api.Produce(_topic, partition, MsgFlagCopy, payload, (nuint)value.Length, null, 0, (IntPtr)sendTimestamp) == 0) return true;
        }
        var error = _api.LastError();
        if (error == ErrQueueFull) return false;
        throw new InvalidOperationException($"rd_kafka_produce failed: {Marshal.PtrToStringUTF8(_api.Err2Str(error))}");
    }

    /// <summary>
    /// Queues up to <paramref name="count"/> copies of one payload to a partition in one call (rd_kafka_produce_batch),
    /// each stamped with the send time; returns how many were queued (fewer when librdkafka's queue is full).
    /// </summary>
    /// With <paramref name="keys"/> holding any, record i gets key number <paramref name="nextKey"/> + i (librdkafka
    /// copies keys), and <paramref name="nextKey"/> moves past the records queued.
    public int TryProduceMany(int partition, ReadOnlySpan<byte> value, int count, long sendTimestamp, BenchKeys keys, ref long nextKey)
    {
        var messages = stackalloc LibrdkafkaMessage[count];
        fixed (byte* payload = value)
        fixed (byte* keyTable = keys.Table)
        {
            for (var i = 0; i < count; i++)
            {
                messages[i] = default;
                messages[i].Payload = (IntPtr)payload;
                messages[i].Length = (nuint)value.Length;
                messages[i].Private = (IntPtr)sendTimestamp;
                if (keys.Count > 0)
                {
                    messages[i].Key = (IntPtr)(keyTable + keys.Offset(nextKey + i));
                    messages[i].KeyLength = BenchKeys.Width;
                }
            }
            var queued = _api.ProduceBatch(_topic, partition, MsgFlagCopy, messages, count);
            nextKey += queued;
            return queued;
        }
    }

    /// <summary>Serves delivery reports, waiting up to <paramref name="timeoutMs"/> for the first; returns how many events were served.</summary>
    public int Poll(int timeoutMs)
    {
        if (_mainQueue == IntPtr.Zero) return _api.Poll(_handle, timeoutMs);
        var served = 0;
        // What is ready is taken in one go, but boundedly, so a busy producer still gets back to sending.
        for (var ev = _api.QueuePoll(_mainQueue, timeoutMs); ev != IntPtr.Zero; ev = served < 64 ? _api.QueuePoll(_mainQueue, 0) : IntPtr.Zero)
        {
            if (_api.EventType(ev) == EventDeliveryReport) Report(ev);
            _api.EventDestroy(ev);
            served++;
        }
        return served;
    }

    private void Report(IntPtr deliveryEvent)
    {
        var onDelivery = OnDelivery;
        fixed (LibrdkafkaMessage** batch = _reports)
        {
            nuint n;
            while ((n = _api.EventMessageArray(deliveryEvent, batch, (nuint)_reports.Length)) > 0)
            {
                for (nuint i = 0; i < n; i++) onDelivery?.Invoke(batch[i]->Err, (long)batch[i]->Private);
            }
        }
    }

    /// <summary>Transactional producers only (transactional.id set): these block, and throw with librdkafka's reason.</summary>
    public void InitTransactions(int timeoutMs) => _api.ThrowIfError(_api.InitTransactions(_handle, timeoutMs), "rd_kafka_init_transactions");

    public void BeginTransaction() => _api.ThrowIfError(_api.BeginTransaction(_handle), "rd_kafka_begin_transaction");

    /// <summary>Flushes the transaction's records (serving their delivery reports on this thread), then commits it.</summary>
    public void CommitTransaction(int timeoutMs) => _api.ThrowIfError(_api.CommitTransaction(_handle, timeoutMs), "rd_kafka_commit_transaction");

    /// <summary>Waits until every queued record is delivered (0) or the timeout passes (an error code).</summary>
    public int Flush(int timeoutMs)
    {
        if (_mainQueue == IntPtr.Zero) return _api.Flush(_handle, timeoutMs);
        // With report events librdkafka's flush only waits; the reports must be served here for the queue to drain.
        var deadline = Environment.TickCount64 + timeoutMs;
        while (_api.OutqLen(_handle) > 0)
        {
            if (Environment.TickCount64 >= deadline) return ErrTimedOut;
            Poll(10);
        }
        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnDeliveryReport(IntPtr rk, LibrdkafkaMessage* message, IntPtr opaque)
    {
        if (GCHandle.FromIntPtr(opaque).Target is NativeProducer producer)
            producer.OnDelivery?.Invoke(message->Err, (long)message->Private);
    }

    public void Dispose()
    {
        Flush(30_000);
        if (_mainQueue != IntPtr.Zero) _api.QueueDestroy(_mainQueue);
        _api.TopicDestroy(_topic);
        _api.Destroy(_handle);
        _self.Free();
    }
}
