using System.Reflection;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Protocol.Tests.Wire;

public sealed class MessageTests
{
    public static IEnumerable<object[]> EveryMessageAndVersion()
    {
        foreach (var type in typeof(ApiKey).Assembly.GetTypes().Where(t => t.IsClass && !t.IsNested && typeof(IKafkaMessage).IsAssignableFrom(t)).OrderBy(t => t.Name))
        {
            var low = (short)type.GetField("LowestSupportedVersion")!.GetValue(null)!;
            var high = (short)type.GetField("HighestSupportedVersion")!.GetValue(null)!;
            for (var v = low; v <= high; v++) yield return [type.Name, v];
        }
    }

    /// <summary>Every generated message, in every version, reads back what it wrote, byte for byte.</summary>
    [Theory]
    [MemberData(nameof(EveryMessageAndVersion))]
    public void DefaultMessagesRoundTrip(string typeName, short version)
    {
        var type = typeof(ApiKey).Assembly.GetTypes().Single(t => t.Name == typeName && !t.IsNested);
        var message = (IKafkaMessage)Activator.CreateInstance(type)!;
        using var first = new KafkaWriter();
        message.Write(first, version);
        var copy = (IKafkaMessage)Activator.CreateInstance(type)!;
        var reader = new KafkaReader(first.WrittenMemory.ToArray());
        copy.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);
        using var second = new KafkaWriter();
        copy.Write(second, version);
        Assert.Equal(first.WrittenSpan.ToArray(), second.WrittenSpan.ToArray());
    }

    [Fact]
    public void MetadataRequestV0MatchesKafkaBytes()
    {
        var request = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = "a" }] };
        using var w = new KafkaWriter();
        request.Write(w, 0);
        Assert.Equal(Convert.FromHexString("00000001000161"), w.WrittenSpan.ToArray());
    }

    [Fact]
    public void FlexibleApiVersionsRequestUsesCompactStringsAndTags()
    {
        // As librdkafka sends it: compact "librdkafka", compact "2.16.0", no tagged fields.
        var bytes = Convert.FromHexString("0B6C696272646B61666B6107322E31362E3000");
        var request = new ApiVersionsRequest();
        var reader = new KafkaReader(bytes);
        request.Read(ref reader, 3);
        Assert.Equal("librdkafka", request.ClientSoftwareName);
        Assert.Equal("2.16.0", request.ClientSoftwareVersion);
        using var w = new KafkaWriter();
        request.Write(w, 3);
        Assert.Equal(bytes, w.WrittenSpan.ToArray());
    }

    [Fact]
    public void TaggedFieldsAreWrittenOnlyWhenSet()
    {
        var response = new FetchResponse { Responses = [new FetchResponse.FetchableTopicResponse { Partitions = [new FetchResponse.PartitionData()] }] };
        using var plain = new KafkaWriter();
        response.Write(plain, 12);
        response.Responses[0].Partitions[0].CurrentLeader = new FetchResponse.LeaderIdAndEpoch { LeaderId = 7, LeaderEpoch = 3 };
        using var tagged = new KafkaWriter();
        response.Write(tagged, 12);
        Assert.True(tagged.Position > plain.Position);
        var back = new FetchResponse();
        var reader = new KafkaReader(tagged.WrittenMemory.ToArray());
        back.Read(ref reader, 12);
        Assert.Equal(7, back.Responses[0].Partitions[0].CurrentLeader!.LeaderId);
        Assert.Equal(3, back.Responses[0].Partitions[0].CurrentLeader!.LeaderEpoch);
    }

    [Fact]
    public void UnknownTaggedFieldsAreSkipped()
    {
        // ApiVersionsRequest v3 with one unknown tag (99) of 2 bytes.
        var bytes = Convert.FromHexString("02610231" + "01" + "63" + "02" + "ABCD");
        var request = new ApiVersionsRequest();
        var reader = new KafkaReader(bytes);
        request.Read(ref reader, 3);
        Assert.Equal("a", request.ClientSoftwareName);
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void HeaderVersionsFollowFlexibility()
    {
        Assert.Equal(1, ApiMessages.RequestHeaderVersion((short)ApiKey.Produce, 8));
        Assert.Equal(2, ApiMessages.RequestHeaderVersion((short)ApiKey.Produce, 9));
        Assert.Equal(0, ApiMessages.ResponseHeaderVersion((short)ApiKey.ApiVersions, 3));
        Assert.Equal(1, ApiMessages.ResponseHeaderVersion((short)ApiKey.Metadata, 9));
        Assert.Equal(0, ApiMessages.RequestHeaderVersion((short)ApiKey.ControlledShutdown, 0));
    }

    [Theory]
    [InlineData((short)8)] // request header v1, response header v0
    [InlineData((short)9)] // flexible: request header v2, response header v1 with tagged fields
    public void ClientFramesWriteARequestAndReadAResponseWithTheHeaderTheirVersionUses(short version)
    {
        using var writer = new KafkaWriter();
        var request = new ProduceRequest { Acks = -1, TimeoutMs = 30_000, TopicData = [new() { Name = "t" }] };
        ClientFrames.WriteRequest(writer, request, version, correlationId: 7, "cli");
        var frame = writer.WrittenSpan.ToArray();
        var reader = new KafkaReader(frame);
        Assert.Equal(frame.Length - 4, reader.ReadInt32());
        var header = new RequestHeader();
        header.Read(ref reader, ApiMessages.RequestHeaderVersion((short)ApiKey.Produce, version));
        Assert.Equal(((short)ApiKey.Produce, version, 7, "cli"), (header.RequestApiKey, header.RequestApiVersion, header.CorrelationId, header.ClientId));
        var read = new ProduceRequest();
        read.Read(ref reader, version);
        Assert.Equal(("t", 30_000, 0), (read.TopicData.Single().Name, read.TimeoutMs, reader.Remaining));

        using var responseWriter = new KafkaWriter();
        new ResponseHeader { CorrelationId = 7 }.Write(responseWriter, ApiMessages.ResponseHeaderVersion((short)ApiKey.Produce, version));
        new ProduceResponse { ThrottleTimeMs = 12, Responses = [new() { Name = "t" }] }.Write(responseWriter, version);
        var response = ClientFrames.ReadResponse<ProduceResponse>(responseWriter.WrittenSpan.ToArray(), (short)ApiKey.Produce, version, out var correlationId);
        Assert.Equal((7, 12, "t"), (correlationId, response.ThrottleTimeMs, response.Responses.Single().Name));
    }
}
