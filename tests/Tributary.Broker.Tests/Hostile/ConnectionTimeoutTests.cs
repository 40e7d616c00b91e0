using System.Buffers.Binary;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// connections.max.idle.ms closes a silent connection; a request frame that stops arriving part-way is closed after
/// socket.request.receive.timeout.ms, and a declared frame size reserves no memory before its bytes arrive. Short
/// configured timeouts; every wait is for the broker's close, bounded.
/// </summary>
[Collection(MeasuredAlone.Name)]
public sealed class ConnectionTimeoutTests
{
    /// <summary>A size prefix announcing <paramref name="declared"/> bytes, then the first <paramref name="sent"/> of them.</summary>
    private static byte[] PartialFrame(int declared, int sent)
    {
        var bytes = new byte[4 + sent];
        BinaryPrimitives.WriteInt32BigEndian(bytes, declared);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(4), 18);
        return bytes;
    }

    [Fact]
    public async Task AnIdleConnectionIsClosedAfterConnectionsMaxIdleMsOnTheBrokersClock()
    {
        // The whole broker runs on a fake clock: the idle limit is crossed by advancing it, not by waiting.
        var clock = Tributary.Testing.FakeTime.Create();
        var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["connections.max.idle.ms"] = "600000",
            [TributaryServer.SchemaRegistryEnableSetting] = "false",
        }, time: clock);
        try
        {
            await using var client = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
            Assert.Equal(0, (await client.SendAsync<Tributary.Protocol.Messages.ApiVersionsResponse>(new Tributary.Protocol.Messages.ApiVersionsRequest(), 0)).ErrorCode);
            clock.Advance(599_000);
            // Still open one second short of the limit: it answers.
            Assert.Equal(0, (await client.SendAsync<Tributary.Protocol.Messages.ApiVersionsResponse>(new Tributary.Protocol.Messages.ApiVersionsRequest(), 0)).ErrorCode);
            clock.Advance(600_000 + 2_000);
            Assert.Equal(0, await client.WaitForCloseAsync());
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task AStalledPartialFrameIsClosedAfterTheReceiveTimeoutHavingPinnedOnlyWhatArrived()
    {
        var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["socket.request.receive.timeout.ms"] = "500" });
        var clients = new List<RawKafkaClient>();
        try
        {
            var allocatedBefore = GC.GetTotalAllocatedBytes();
            for (var i = 0; i < 20; i++)
            {
                clients.Add(await RawKafkaClient.ConnectAsync(server.BootstrapServers));
                await clients[^1].SendRawAsync(PartialFrame(100 * 1024 * 1024 - 100, 64 * 1024));
            }
            foreach (var client in clients) Assert.Equal(0, await client.WaitForCloseAsync());
            // 20 declared frames of 100 MiB once cost 2 GB up front; now each costs its first 1 MiB buffer.
            var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
            Assert.True(allocated < 512L << 20, $"{allocated >> 20} MiB allocated for 20 stalled frames of 64 KiB each");
            await NormalClient.RoundTripAsync(server.BootstrapServers);
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
            await server.StopAsync();
        }
    }
}
