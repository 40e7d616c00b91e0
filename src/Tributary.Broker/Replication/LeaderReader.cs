using Tributary.Broker.Cluster;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Replication;

/// <summary>
/// Reads one partition from its leader as a consumer does (Fetch with replica id -1, so only what is committed: up to the
/// high watermark), for a broker that holds no replica of it but keeps state from it: the schema registry of a broker
/// outside <c>_schemas</c>' replica set. One long-polling request at a time over one connection, to the leader the
/// current metadata image names; a failure closes the connection and the next read connects again.
/// </summary>
internal sealed class LeaderReader(Func<MetadataImage> image, int nodeId, string topic, int partition, Network.InterBrokerSecurity? security, int maxWaitMs = 500, int maxBytes = 1 << 20)
    : IAsyncDisposable
{
    private const short FetchVersion = 12;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private BrokerChannel? _channel;
    private (int Leader, string Host, int Port) _connectedTo;

    /// <summary>What a read returned: whole batches from the offset asked, the high watermark and the log start.</summary>
    public sealed record Result(ReadOnlyMemory<byte> Batches, long HighWatermark, long LogStartOffset);

    /// <summary>
    /// Batches from <paramref name="offset"/> (waiting up to the max wait for some); null when the partition has no live
    /// leader, or the leader did not answer with records (not the leader any more, unreachable). An offset below the
    /// leader's log start answers no batches and the log start, so the reader starts over there.
    /// </summary>
    public async Task<Result?> ReadAsync(long offset, CancellationToken cancellationToken)
    {
        var current = image();
        if (current.Partition(topic, partition) is not { Leader: >= 0 } state || state.Leader == nodeId
            || !current.Brokers.TryGetValue(state.Leader, out var leader))
            return null;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_channel is not null && _connectedTo != (leader.NodeId, leader.Host, leader.Port)) await CloseAsync().ConfigureAwait(false);
            _channel ??= await BrokerChannel.ConnectAsync(leader.Host, leader.Port, $"broker-{nodeId}-{topic}", security, cancellationToken).ConfigureAwait(false);
            _connectedTo = (leader.NodeId, leader.Host, leader.Port);
            var request = new FetchRequest
            {
                ReplicaId = -1,
                MaxWaitMs = maxWaitMs,
                MinBytes = 1,
                MaxBytes = maxBytes,
                IsolationLevel = 0,
                SessionId = 0,
                SessionEpoch = -1,
                Topics =
                [
                    new FetchRequest.FetchTopic
                    {
                        Topic = topic,
                        Partitions = [new FetchRequest.FetchPartition { Partition = partition, FetchOffset = offset, CurrentLeaderEpoch = state.LeaderEpoch, LogStartOffset = -1, PartitionMaxBytes = maxBytes }],
                    },
                ],
            };
            var response = await _channel.SendAsync<FetchResponse>(request, FetchVersion, cancellationToken).ConfigureAwait(false);
            var data = response.Responses.SelectMany(t => t.Partitions).FirstOrDefault(p => p.PartitionIndex == partition);
            if (data is null) return null;
            if (data.ErrorCode == (short)ErrorCode.OffsetOutOfRange && data.LogStartOffset > offset) return new Result(ReadOnlyMemory<byte>.Empty, data.HighWatermark, data.LogStartOffset);
            if (data.ErrorCode != 0) return null;
            return new Result(data.Records ?? ReadOnlyMemory<byte>.Empty, data.HighWatermark, data.LogStartOffset);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ProtocolException or ObjectDisposedException)
        {
            await CloseAsync().ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException)
        {
            // Cancelled mid-exchange: the connection's next bytes would be this response's.
            await CloseAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task CloseAsync()
    {
        if (_channel is { } channel) await channel.DisposeAsync().ConfigureAwait(false);
        _channel = null;
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}
