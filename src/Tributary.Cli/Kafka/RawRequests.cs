using System.Buffers.Binary;
using System.Net.Sockets;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Kafka;

/// <summary>
/// One Kafka request and its response over a fresh plain-text connection, with the generated message types: for the
/// APIs librdkafka has no admin call for (transactions, producers, partition reassignments). Works against any
/// Kafka-compatible broker; TLS and SASL listeners (-X security.protocol) are not supported on this path.
/// </summary>
public static class RawRequests
{
    public static async Task<TResponse> SendAsync<TResponse>(string host, int port, IKafkaRequest request, short version, TimeSpan? timeout = null)
        where TResponse : IKafkaResponse, new()
    {
        using var cts = new CancellationTokenSource(timeout ?? ClientOptions.Timeout);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(host, port, cts.Token);
        var stream = client.GetStream();
        using (var writer = new KafkaWriter())
        {
            ClientFrames.WriteRequest(writer, request, version, correlationId: 1, "tributary-cli");
            await stream.WriteAsync(writer.WrittenMemory, cts.Token);
        }
        var size = new byte[4];
        await stream.ReadExactlyAsync(size, cts.Token);
        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await stream.ReadExactlyAsync(frame, cts.Token);
        return ClientFrames.ReadResponse<TResponse>(frame, request.ApiKey, version, out _);
    }
}
