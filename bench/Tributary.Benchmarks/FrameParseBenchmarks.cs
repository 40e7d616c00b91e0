using BenchmarkDotNet.Attributes;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Protocol.Wire;

namespace Tributary.Benchmarks;

/// <summary>Parsing a produce request (header and body) that carries one 1 MB batch, and validating its records.</summary>
[MemoryDiagnoser]
public class FrameParseBenchmarks
{
    private byte[] _frame = [];

    [GlobalSetup]
    public void Setup()
    {
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = "bench", PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = Batches.Build(8_000, 100) }] }],
        };
        using var writer = new KafkaWriter();
        new RequestHeader { RequestApiKey = 0, RequestApiVersion = 9, CorrelationId = 1, ClientId = "bench" }.Write(writer, 2);
        request.Write(writer, 9);
        _frame = writer.WrittenSpan.ToArray();
    }

    [Benchmark]
    public int ParseProduceRequest()
    {
        var reader = new KafkaReader(_frame);
        var header = new RequestHeader();
        header.Read(ref reader, 2);
        var request = new ProduceRequest();
        request.Read(ref reader, 9);
        return request.TopicData[0].PartitionData[0].Records!.Value.Length;
    }

    [Benchmark]
    public long ParseAndValidate()
    {
        var reader = new KafkaReader(_frame);
        var header = new RequestHeader();
        header.Read(ref reader, 2);
        var request = new ProduceRequest();
        request.Read(ref reader, 9);
        var records = request.TopicData[0].PartitionData[0].Records!.Value.Span;
        return RecordBatchValidator.Validate(records, int.MaxValue, out var summary) == RecordsError.None ? summary.RecordCount : -1;
    }
}
