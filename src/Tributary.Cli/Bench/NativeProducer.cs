using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Tributary.Cli.Bench;

/// <summary>
/// A producer that calls librdkafka's C API directly — the same librdkafka binary Confluent.Kafka ships and loads.
/// Confluent.Kafka's .NET layer costs about a microsecond per record (marshalling each message and its delivery
/// report), which caps one .NET producer well below what librdkafka and the broker can do; calling
/// <c>rd_kafka_produce</c> with a copied payload and the send time as the per-message opaque removes that layer, so
/// the benchmark measures the broker. Delivery reports arrive on the thread that calls <see cref="Poll"/>.
/// </summary>
public sealed unsafe class NativeProducer : IDisposable
{
    private const int ProducerType = 0;
    private const int MsgFlagCopy = 0x2;
    private const int ErrQueueFull = -184;

    private static readonly Lazy<Api> Native = new(Api.Load);
    private readonly Api _api;
    private readonly IntPtr _handle;
    private readonly IntPtr _topic;
    private readonly GCHandle _self;

    /// <summary>Called on the polling thread for each delivery report: error code (0 = success) and the send timestamp.</summary>
    public Action<int, long>? OnDelivery { get; set; }

    public NativeProducer(IReadOnlyDictionary<string, string> config, string topic)
    {
        _api = Native.Value;
        var conf = _api.ConfNew();
        var error = stackalloc byte[512];
        foreach (var (name, value) in config)
        {
            if (_api.ConfSet(conf, Utf8(name), Utf8(value), error, 512) != 0)
                throw new InvalidOperationException($"librdkafka rejected {name}={value}: {Marshal.PtrToStringUTF8((IntPtr)error)}");
        }
        _self = GCHandle.Alloc(this);
        _api.ConfSetOpaque(conf, GCHandle.ToIntPtr(_self));
        _api.ConfSetDrMsgCb(conf, &OnDeliveryReport);
        _handle = _api.New(ProducerType, conf, error, 512);
        if (_handle == IntPtr.Zero)
        {
            _self.Free();
            throw new InvalidOperationException("librdkafka could not create a producer: " + Marshal.PtrToStringUTF8((IntPtr)error));
        }
        _topic = _api.TopicNew(_handle, Utf8(topic), IntPtr.Zero);
    }

    private static byte* Utf8(string s)
    {
        // Lives for the process: configuration strings are few, and librdkafka copies them anyway.
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        var pinned = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return (byte*)pinned.AddrOfPinnedObject();
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

    public int Poll(int timeoutMs) => _api.Poll(_handle, timeoutMs);

    public int Flush(int timeoutMs) => _api.Flush(_handle, timeoutMs);

    [UnmanagedCallersOnly]
    private static void OnDeliveryReport(IntPtr rk, Message* message, IntPtr opaque)
    {
        if (GCHandle.FromIntPtr(opaque).Target is NativeProducer producer)
            producer.OnDelivery?.Invoke(message->Err, (long)message->Private);
    }

    public void Dispose()
    {
        _api.Flush(_handle, 30_000);
        _api.TopicDestroy(_topic);
        _api.Destroy(_handle);
        _self.Free();
    }

    /// <summary>rd_kafka_message_t, as laid out by librdkafka on 64-bit platforms.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Message
    {
        public int Err;
        public IntPtr Topic;
        public int Partition;
        public IntPtr Payload;
        public nuint Length;
        public IntPtr Key;
        public nuint KeyLength;
        public long Offset;
        public IntPtr Private;
    }

    private sealed class Api
    {
        public delegate* unmanaged<IntPtr> ConfNew;
        public delegate* unmanaged<IntPtr, byte*, byte*, byte*, nuint, int> ConfSet;
        public delegate* unmanaged<IntPtr, IntPtr, void> ConfSetOpaque;
        public delegate* unmanaged<IntPtr, delegate* unmanaged<IntPtr, Message*, IntPtr, void>, void> ConfSetDrMsgCb;
        public delegate* unmanaged<int, IntPtr, byte*, nuint, IntPtr> New;
        public delegate* unmanaged<IntPtr, byte*, IntPtr, IntPtr> TopicNew;
        public delegate* unmanaged<IntPtr, int, int, byte*, nuint, byte*, nuint, IntPtr, int> Produce;
        public delegate* unmanaged<int> LastError;
        public delegate* unmanaged<int, IntPtr> Err2Str;
        public delegate* unmanaged<IntPtr, int, int> Poll;
        public delegate* unmanaged<IntPtr, int, int> Flush;
        public delegate* unmanaged<IntPtr, void> TopicDestroy;
        public delegate* unmanaged<IntPtr, void> Destroy;

        /// <summary>Loads the librdkafka that Confluent.Kafka resolves (see NativeLibrdkafka), so both use one binary.</summary>
        public static Api Load()
        {
            Kafka.NativeLibrdkafka.EnsureLoaded();
            _ = Confluent.Kafka.Library.Version; // makes Confluent.Kafka load librdkafka through its resolver
            var library = NativeLibrary.Load(Kafka.NativeLibrdkafka.ResolvedPath ?? "librdkafka");
            IntPtr F(string name) => NativeLibrary.GetExport(library, name);
            return new Api
            {
                ConfNew = (delegate* unmanaged<IntPtr>)F("rd_kafka_conf_new"),
                ConfSet = (delegate* unmanaged<IntPtr, byte*, byte*, byte*, nuint, int>)F("rd_kafka_conf_set"),
                ConfSetOpaque = (delegate* unmanaged<IntPtr, IntPtr, void>)F("rd_kafka_conf_set_opaque"),
                ConfSetDrMsgCb = (delegate* unmanaged<IntPtr, delegate* unmanaged<IntPtr, Message*, IntPtr, void>, void>)F("rd_kafka_conf_set_dr_msg_cb"),
                New = (delegate* unmanaged<int, IntPtr, byte*, nuint, IntPtr>)F("rd_kafka_new"),
                TopicNew = (delegate* unmanaged<IntPtr, byte*, IntPtr, IntPtr>)F("rd_kafka_topic_new"),
                Produce = (delegate* unmanaged<IntPtr, int, int, byte*, nuint, byte*, nuint, IntPtr, int>)F("rd_kafka_produce"),
                LastError = (delegate* unmanaged<int>)F("rd_kafka_last_error"),
                Err2Str = (delegate* unmanaged<int, IntPtr>)F("rd_kafka_err2str"),
                Poll = (delegate* unmanaged<IntPtr, int, int>)F("rd_kafka_poll"),
                Flush = (delegate* unmanaged<IntPtr, int, int>)F("rd_kafka_flush"),
                TopicDestroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_topic_destroy"),
                Destroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_destroy"),
            };
        }
    }
}
