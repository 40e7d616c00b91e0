using System.Runtime.InteropServices;

namespace Tributary.Cli.Bench;

/// <summary>rd_kafka_message_t, as laid out by librdkafka on 64-bit platforms.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LibrdkafkaMessage
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

/// <summary>The librdkafka C functions the native benchmark clients call, bound once.</summary>
internal sealed unsafe class LibrdkafkaApi
{
    private static readonly Lazy<LibrdkafkaApi> Loaded = new(Load);

    public static LibrdkafkaApi Instance => Loaded.Value;

    /// <summary>A NUL-terminated UTF-8 copy that lives for the process: configuration strings are few, and librdkafka copies them.</summary>
    public static byte* Utf8(string s)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(s + "\0");
        var pinned = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return (byte*)pinned.AddrOfPinnedObject();
    }

    /// <summary>A configuration object with every setting applied; throws with librdkafka's reason for a bad one.</summary>
    public IntPtr NewConfig(IReadOnlyDictionary<string, string> config)
    {
        var conf = ConfNew();
        var error = stackalloc byte[512];
        foreach (var (name, value) in config)
        {
            if (ConfSet(conf, Utf8(name), Utf8(value), error, 512) != 0)
                throw new InvalidOperationException($"librdkafka rejected {name}={value}: {Marshal.PtrToStringUTF8((IntPtr)error)}");
        }
        return conf;
    }

    /// <summary>rd_kafka_new; type 0 is a producer, 1 a consumer. Takes ownership of <paramref name="conf"/>.</summary>
    public IntPtr NewClient(int type, IntPtr conf)
    {
        var error = stackalloc byte[512];
        var handle = New(type, conf, error, 512);
        return handle != IntPtr.Zero ? handle : throw new InvalidOperationException("librdkafka could not create a client: " + Marshal.PtrToStringUTF8((IntPtr)error));
    }

    public delegate* unmanaged<IntPtr> ConfNew;
    public delegate* unmanaged<IntPtr, byte*, byte*, byte*, nuint, int> ConfSet;
    public delegate* unmanaged<IntPtr, IntPtr, void> ConfSetOpaque;
    public delegate* unmanaged<IntPtr, delegate* unmanaged<IntPtr, LibrdkafkaMessage*, IntPtr, void>, void> ConfSetDrMsgCb;
    public delegate* unmanaged<int, IntPtr, byte*, nuint, IntPtr> New;
    public delegate* unmanaged<IntPtr, byte*, IntPtr, IntPtr> TopicNew;
    public delegate* unmanaged<IntPtr, int, int, byte*, nuint, byte*, nuint, IntPtr, int> Produce;
    public delegate* unmanaged<IntPtr, int, int, LibrdkafkaMessage*, int, int> ProduceBatch;
    public delegate* unmanaged<int> LastError;
    public delegate* unmanaged<int, IntPtr> Err2Str;
    public delegate* unmanaged<IntPtr, int, int> Poll;
    public delegate* unmanaged<IntPtr, int, int> Flush;
    public delegate* unmanaged<IntPtr, void> TopicDestroy;
    public delegate* unmanaged<IntPtr, void> Destroy;
    public delegate* unmanaged<IntPtr, int, long, int> ConsumeStart;
    public delegate* unmanaged<IntPtr, int, int> ConsumeStop;
    public delegate* unmanaged<IntPtr, int, int, LibrdkafkaMessage**, nuint, nint> ConsumeBatch;
    public delegate* unmanaged<IntPtr, IntPtr> QueueNew;
    public delegate* unmanaged<IntPtr, void> QueueDestroy;
    public delegate* unmanaged<IntPtr, int, long, IntPtr, int> ConsumeStartQueue;
    public delegate* unmanaged<IntPtr, int, LibrdkafkaMessage**, nuint, nint> ConsumeBatchQueue;
    public delegate* unmanaged<IntPtr, int, LibrdkafkaMessage*> ConsumeQueue;
    public delegate* unmanaged<IntPtr, byte*, int, long*, long*, int, int> QueryWatermarkOffsets;
    public delegate* unmanaged<LibrdkafkaMessage*, void> MessageDestroy;
    public delegate* unmanaged<IntPtr, int, void> ConfSetEvents;
    public delegate* unmanaged<IntPtr, IntPtr> QueueGetMain;
    public delegate* unmanaged<IntPtr, int, IntPtr> QueuePoll;
    public delegate* unmanaged<IntPtr, int> EventType;
    public delegate* unmanaged<IntPtr, LibrdkafkaMessage**, nuint, nuint> EventMessageArray;
    public delegate* unmanaged<IntPtr, void> EventDestroy;
    public delegate* unmanaged<IntPtr, int> OutqLen;
    public delegate* unmanaged<IntPtr, int, IntPtr> InitTransactions;
    public delegate* unmanaged<IntPtr, IntPtr> BeginTransaction;
    public delegate* unmanaged<IntPtr, int, IntPtr> CommitTransaction;
    public delegate* unmanaged<IntPtr, IntPtr> ErrorString;
    public delegate* unmanaged<IntPtr, void> ErrorDestroy;

    /// <summary>Throws for a non-null rd_kafka_error_t (the transactional calls return one), destroying it.</summary>
    public void ThrowIfError(IntPtr error, string call)
    {
        if (error == IntPtr.Zero) return;
        var message = Marshal.PtrToStringUTF8(ErrorString(error));
        ErrorDestroy(error);
        throw new InvalidOperationException($"{call} failed: {message}");
    }

    /// <summary>Loads the librdkafka that Confluent.Kafka resolves (see NativeLibrdkafka), so both use one binary.</summary>
    private static LibrdkafkaApi Load()
    {
        Kafka.NativeLibrdkafka.EnsureLoaded();
        _ = Confluent.Kafka.Library.Version; // makes Confluent.Kafka load librdkafka through its resolver
        var library = NativeLibrary.Load(Kafka.NativeLibrdkafka.ResolvedPath ?? "librdkafka");
        IntPtr F(string name) => NativeLibrary.GetExport(library, name);
        return new LibrdkafkaApi
        {
            ConfNew = (delegate* unmanaged<IntPtr>)F("rd_kafka_conf_new"),
            ConfSet = (delegate* unmanaged<IntPtr, byte*, byte*, byte*, nuint, int>)F("rd_kafka_conf_set"),
            ConfSetOpaque = (delegate* unmanaged<IntPtr, IntPtr, void>)F("rd_kafka_conf_set_opaque"),
            ConfSetDrMsgCb = (delegate* unmanaged<IntPtr, delegate* unmanaged<IntPtr, LibrdkafkaMessage*, IntPtr, void>, void>)F("rd_kafka_conf_set_dr_msg_cb"),
            New = (delegate* unmanaged<int, IntPtr, byte*, nuint, IntPtr>)F("rd_kafka_new"),
            TopicNew = (delegate* unmanaged<IntPtr, byte*, IntPtr, IntPtr>)F("rd_kafka_topic_new"),
            Produce = (delegate* unmanaged<IntPtr, int, int, byte*, nuint, byte*, nuint, IntPtr, int>)F("rd_kafka_produce"),
            ProduceBatch = (delegate* unmanaged<IntPtr, int, int, LibrdkafkaMessage*, int, int>)F("rd_kafka_produce_batch"),
            LastError = (delegate* unmanaged<int>)F("rd_kafka_last_error"),
            Err2Str = (delegate* unmanaged<int, IntPtr>)F("rd_kafka_err2str"),
            Poll = (delegate* unmanaged<IntPtr, int, int>)F("rd_kafka_poll"),
            Flush = (delegate* unmanaged<IntPtr, int, int>)F("rd_kafka_flush"),
            TopicDestroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_topic_destroy"),
            Destroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_destroy"),
            ConsumeStart = (delegate* unmanaged<IntPtr, int, long, int>)F("rd_kafka_consume_start"),
            ConsumeStop = (delegate* unmanaged<IntPtr, int, int>)F("rd_kafka_consume_stop"),
            ConsumeBatch = (delegate* unmanaged<IntPtr, int, int, LibrdkafkaMessage**, nuint, nint>)F("rd_kafka_consume_batch"),
            QueueNew = (delegate* unmanaged<IntPtr, IntPtr>)F("rd_kafka_queue_new"),
            QueueDestroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_queue_destroy"),
            ConsumeStartQueue = (delegate* unmanaged<IntPtr, int, long, IntPtr, int>)F("rd_kafka_consume_start_queue"),
            ConsumeBatchQueue = (delegate* unmanaged<IntPtr, int, LibrdkafkaMessage**, nuint, nint>)F("rd_kafka_consume_batch_queue"),
            ConsumeQueue = (delegate* unmanaged<IntPtr, int, LibrdkafkaMessage*>)F("rd_kafka_consume_queue"),
            QueryWatermarkOffsets = (delegate* unmanaged<IntPtr, byte*, int, long*, long*, int, int>)F("rd_kafka_query_watermark_offsets"),
            MessageDestroy = (delegate* unmanaged<LibrdkafkaMessage*, void>)F("rd_kafka_message_destroy"),
            ConfSetEvents = (delegate* unmanaged<IntPtr, int, void>)F("rd_kafka_conf_set_events"),
            QueueGetMain = (delegate* unmanaged<IntPtr, IntPtr>)F("rd_kafka_queue_get_main"),
            QueuePoll = (delegate* unmanaged<IntPtr, int, IntPtr>)F("rd_kafka_queue_poll"),
            EventType = (delegate* unmanaged<IntPtr, int>)F("rd_kafka_event_type"),
            EventMessageArray = (delegate* unmanaged<IntPtr, LibrdkafkaMessage**, nuint, nuint>)F("rd_kafka_event_message_array"),
            EventDestroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_event_destroy"),
            OutqLen = (delegate* unmanaged<IntPtr, int>)F("rd_kafka_outq_len"),
            InitTransactions = (delegate* unmanaged<IntPtr, int, IntPtr>)F("rd_kafka_init_transactions"),
            BeginTransaction = (delegate* unmanaged<IntPtr, IntPtr>)F("rd_kafka_begin_transaction"),
            CommitTransaction = (delegate* unmanaged<IntPtr, int, IntPtr>)F("rd_kafka_commit_transaction"),
            ErrorString = (delegate* unmanaged<IntPtr, IntPtr>)F("rd_kafka_error_string"),
            ErrorDestroy = (delegate* unmanaged<IntPtr, void>)F("rd_kafka_error_destroy"),
        };
    }
}
