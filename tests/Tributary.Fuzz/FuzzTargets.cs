using System.Buffers.Binary;
using System.Linq.Expressions;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Protocol.Wire;

namespace Tributary.Fuzz;

/// <summary>
/// What the broker does with a request frame before any handler runs, as one function over untrusted bytes: the
/// request header, the body of whichever generated request type the API key names (every type Kafka defines, not
/// only those we serve), and for produce requests the record batch validator and, if it accepts, the record reader.
///
/// The contract under test: malformed input surfaces only as <see cref="ProtocolException"/> (framing and fields)
/// or <see cref="InvalidRecordException"/> (records); a <see cref="RecordsError"/> is a normal answer. Anything else
/// escaping (IndexOutOfRange, Overflow, OutOfMemory, NullReference...) is a bug. A parsed request must also survive
/// a write/read/write round trip unchanged, so the writer agrees with the reader on everything the reader accepts.
/// </summary>
public static class FuzzTargets
{
    private sealed record RequestType(short ApiKey, short Lowest, short Highest, Func<IKafkaRequest> Create);

    private static readonly Dictionary<short, RequestType> Requests = typeof(RequestHeader).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false, IsNested: false } && typeof(IKafkaRequest).IsAssignableFrom(t))
        .Select(t => new RequestType(
            Const(t, "ApiKeyValue"),
            Const(t, "LowestSupportedVersion"),
            Const(t, "HighestSupportedVersion"),
            Expression.Lambda<Func<IKafkaRequest>>(Expression.New(t)).Compile()))
        .ToDictionary(r => r.ApiKey);

    /// <summary>Number of request types known to the target (all of Kafka's).</summary>
    public static int RequestTypeCount => Requests.Count;

    private static short Const(Type type, string name) => (short)type.GetField(name)!.GetValue(null)!;

    /// <summary>
    /// One request frame as the broker sees it after the 4-byte size: api key, api version, correlation id, client id,
    /// tagged fields if flexible, body. A version outside the type's range is folded into it, so that every input
    /// reaches some parser instead of stopping at the version check.
    /// </summary>
    public static void ParseRequest(ReadOnlySpan<byte> frame)
    {
        // The connection refuses frames shorter than a header before parsing anything.
        if (frame.Length < 8) return;
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(frame);
        if (!Requests.TryGetValue(apiKey, out var type)) return;
        var version = BinaryPrimitives.ReadInt16BigEndian(frame[2..]);
        if (version < type.Lowest || version > type.Highest)
            version = (short)(type.Lowest + (ushort)version % (type.Highest - type.Lowest + 1));

        var memory = frame.ToArray();
        IKafkaRequest request;
        try
        {
            var reader = new KafkaReader(memory);
            new RequestHeader().Read(ref reader, ApiMessages.RequestHeaderVersion(apiKey, version));
            request = type.Create();
            request.Read(ref reader, version);
        }
        catch (ProtocolException)
        {
            return;
        }

        RoundTrip(type, request, version);
        if (request is ProduceRequest produce) CheckRecords(produce);
    }

    private static void RoundTrip(RequestType type, IKafkaRequest request, short version)
    {
        using var first = new KafkaWriter(256);
        request.Write(first, version);
        var again = type.Create();
        var reader = new KafkaReader(first.WrittenMemory.ToArray());
        again.Read(ref reader, version);
        if (reader.Remaining != 0)
            throw new InvalidOperationException($"{(ApiKey)type.ApiKey} v{version}: {reader.Remaining} bytes left after reading back what was written");
        using var second = new KafkaWriter(256);
        again.Write(second, version);
        if (!first.WrittenSpan.SequenceEqual(second.WrittenSpan))
            throw new InvalidOperationException($"{(ApiKey)type.ApiKey} v{version}: write/read/write is not stable");
    }

    private static void CheckRecords(ProduceRequest produce)
    {
        foreach (var topic in produce.TopicData)
        {
            foreach (var partition in topic.PartitionData)
            {
                if (partition.Records is not { } records) continue;
                if (RecordBatchValidator.Validate(records.Span, 1024 * 1024, out _, out _) != RecordsError.None) continue;
                try
                {
                    RecordReader.ReadAllBatches(records);
                }
                catch (InvalidRecordException)
                {
                }
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="input"/> through <see cref="ParseRequest"/>; returns null when it behaved, else the
    /// unexpected exception.
    /// </summary>
    public static Exception? Check(ReadOnlySpan<byte> input)
    {
        try
        {
            ParseRequest(input);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
