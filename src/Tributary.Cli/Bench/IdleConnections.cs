using System.Net.Sockets;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Bench;

/// <summary>
/// Opens connections that introduce themselves (one ApiVersions round trip each, as every client does first) and
/// then stay idle for the whole run, to measure what idle clients cost the broker.
/// </summary>
public sealed class IdleConnections : IAsyncDisposable
{
    private readonly List<Socket> _sockets = [];

    public int Count => _sockets.Count;

    public static async Task<IdleConnections> OpenAsync(string bootstrap, int count, CancellationToken cancellation)
    {
        var first = bootstrap.Split(',')[0];
        var colon = first.LastIndexOf(':');
        var host = first[..colon];
        var port = int.Parse(first[(colon + 1)..]);
        var frame = ApiVersionsFrame();
        var idle = new IdleConnections();
        var response = new byte[65536];
        for (var i = 0; i < count; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            idle._sockets.Add(socket);
            await socket.ConnectAsync(host, port, cancellation).ConfigureAwait(false);
            await socket.SendAsync(frame, SocketFlags.None, cancellation).ConfigureAwait(false);
            if (await socket.ReceiveAsync(response, SocketFlags.None, cancellation).ConfigureAwait(false) == 0)
                throw new IOException($"the broker closed idle connection {i} instead of answering ApiVersions");
        }
        return idle;
    }

    private static byte[] ApiVersionsFrame()
    {
        using var writer = new KafkaWriter();
        var sizeAt = writer.ReserveInt32();
        new RequestHeader { RequestApiKey = (short)ApiKey.ApiVersions, RequestApiVersion = 0, CorrelationId = 1, ClientId = "tributary-bench-idle" }.Write(writer, 1);
        new ApiVersionsRequest().Write(writer, 0);
        writer.PatchInt32(sizeAt, writer.Position - 4);
        return writer.WrittenSpan.ToArray();
    }

    public ValueTask DisposeAsync()
    {
        foreach (var socket in _sockets) socket.Dispose();
        _sockets.Clear();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Resident memory of a local process (the broker under test), from /proc.</summary>
public static class ProcessMemory
{
    public static long? ResidentBytes(int pid)
    {
        var path = $"/proc/{pid}/status";
        if (!File.Exists(path)) return null;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        if (line is null) return null;
        var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]);
        return kb * 1024;
    }
}
