using Tributary.Protocol.Messages;

namespace Tributary.Protocol.Wire;

/// <summary>The framing a client speaks: a request as size, header and body; a response frame read back into its message.</summary>
public static class ClientFrames
{
    /// <summary>Writes one request frame: a 4-byte size, the request header of the version Kafka uses for this API version, then the body.</summary>
    public static void WriteRequest(KafkaWriter writer, IKafkaRequest request, short version, int correlationId, string? clientId)
    {
        var sizeAt = writer.ReserveInt32();
        new RequestHeader { RequestApiKey = request.ApiKey, RequestApiVersion = version, CorrelationId = correlationId, ClientId = clientId }
            .Write(writer, ApiMessages.RequestHeaderVersion(request.ApiKey, version));
        request.Write(writer, version);
        writer.PatchInt32(sizeAt, writer.TotalLength - 4);
    }

    /// <summary>Reads a response frame (without its size): the response header of the version the API uses, then the body.</summary>
    public static TResponse ReadResponse<TResponse>(ReadOnlyMemory<byte> frame, short apiKey, short version, out int correlationId)
        where TResponse : IKafkaResponse, new()
    {
        var reader = new KafkaReader(frame);
        var header = new ResponseHeader();
        header.Read(ref reader, ApiMessages.ResponseHeaderVersion(apiKey, version));
        correlationId = header.CorrelationId;
        var response = new TResponse();
        response.Read(ref reader, version);
        return response;
    }
}
