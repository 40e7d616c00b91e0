using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Bench.Wire;

/// <summary>
/// One pipelined connection to a broker: requests are sent from any thread (one at a time), and a reader thread
/// matches responses to them in order, since a Kafka broker answers a connection's requests in the order they came.
/// Large record blobs are sent from their own buffers with one gathered send, not copied into the request.
/// </summary>
public sealed class WireConnection : IDisposable
{
    private const int MaxResponseBytes = 64 * 1024 * 1024;

    private readonly Socket _socket;
    private readonly string _clientId;
    private readonly Lock _sendLock = new();
    private readonly ConcurrentQueue<Pending> _pending = new();
    private readonly Thread _reader;
    private readonly List<ArraySegment<byte>> _segments = [];
    private readonly KafkaWriter _writer = new(64 * 1024) { ReferenceLargeRecords = true };
    private int _nextCorrelationId;
    private volatile Exception? _failure;

    public string Endpoint { get; }

    private sealed record Pending(int CorrelationId, short ApiKey, short Version, Action<byte[]?, Exception?> OnResponse);

    private WireConnection(Socket socket, string endpoint, string clientId)
    {
        _socket = socket;
        _clientId = clientId;
        Endpoint = endpoint;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = $"wire-reader {endpoint}" };
        _reader.Start();
    }

    public static WireConnection Connect(string host, int port, string clientId)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Connect(host, port);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new WireConnection(socket, $"{host}:{port}", clientId);
    }

    /// <summary>
    /// Sends a request; <paramref name="onResponse"/> runs on the reader thread with the response frame (correlation
    /// id onwards) or the error that ended the connection.
    /// </summary>
    public void Send(IKafkaRequest request, short version, Action<byte[]?, Exception?> onResponse)
    {
        lock (_sendLock)
        {
            if (_failure is { } failure) throw new IOException($"connection to {Endpoint} failed", failure);
            var correlationId = ++_nextCorrelationId;
            _writer.Reset();
            ClientFrames.WriteRequest(_writer, request, version, correlationId, _clientId);
            _writer.GetSegments(_segments);
            _pending.Enqueue(new Pending(correlationId, request.ApiKey, version, onResponse));
            SendAll();
            // The reader may have failed after the check above and drained the queue before this request joined it.
            if (_failure is { } late) FailPending(late);
        }
    }

    private void FailPending(Exception error)
    {
        while (_pending.TryDequeue(out var pending)) pending.OnResponse(null, error);
    }

    /// <summary>Sends a request and waits for its parsed response.</summary>
    public TResponse Call<TResponse>(IKafkaRequest request, short version, TimeSpan timeout) where TResponse : IKafkaResponse, new()
    {
        var done = new TaskCompletionSource<TResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        Send(request, version, (frame, error) =>
        {
            if (error is not null) done.TrySetException(error);
            else
            {
                try
                {
                    done.TrySetResult(ClientFrames.ReadResponse<TResponse>(frame!, request.ApiKey, version, out _));
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                }
            }
        });
        if (!done.Task.Wait(timeout)) throw new TimeoutException($"{(ApiKey)request.ApiKey} v{version} to {Endpoint}: no answer in {timeout.TotalSeconds:0} s");
        return done.Task.Result;
    }

    private void SendAll()
    {
        // A blocking gathered send may stop short of the whole message; resume from where it stopped.
        var sent = _socket.Send(_segments);
        var total = _writer.TotalLength;
        while (sent < total)
        {
            var skip = sent;
            var rest = new List<ArraySegment<byte>>();
            foreach (var segment in _segments)
            {
                if (skip >= segment.Count) { skip -= segment.Count; continue; }
                rest.Add(segment[skip..]);
                skip = 0;
            }
            _segments.Clear();
            _segments.AddRange(rest);
            total -= sent;
            sent = _socket.Send(_segments);
        }
    }

    private void ReadLoop()
    {
        var size = new byte[4];
        try
        {
            while (true)
            {
                if (!ReadFully(size)) throw new IOException($"{Endpoint} closed the connection");
                var length = BinaryPrimitives.ReadInt32BigEndian(size);
                if (length < 4 || length > MaxResponseBytes) throw new InvalidDataException($"{Endpoint} sent a response of {length} bytes");
                var frame = new byte[length];
                if (!ReadFully(frame)) throw new IOException($"{Endpoint} closed the connection mid-response");
                if (!_pending.TryDequeue(out var pending)) throw new InvalidDataException($"{Endpoint} answered a request that was not sent");
                var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame);
                if (correlationId != pending.CorrelationId)
                    throw new InvalidDataException($"{Endpoint} answered correlation id {correlationId}, expected {pending.CorrelationId}");
                pending.OnResponse(frame, null);
            }
        }
        catch (Exception e)
        {
            _failure = e;
            FailPending(e);
        }
    }

    private bool ReadFully(Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = _socket.Receive(buffer);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    public void Dispose()
    {
        _socket.Dispose();
        _reader.Join(TimeSpan.FromSeconds(5));
        _writer.Dispose();
    }
}
