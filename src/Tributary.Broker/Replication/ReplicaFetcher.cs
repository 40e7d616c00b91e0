using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using Tributary.Protocol.Wire;
using Tributary.Storage;

namespace Tributary.Broker.Replication;

/// <summary>
/// Copies the partitions this broker follows from one leader, as Kafka's ReplicaFetcherThread: a partition that joins
/// (or whose leader epoch changed) is first truncated to where its log agrees with the leader's
/// (OffsetForLeaderEpoch with its latest epoch, KIP-101/279), then fetched from its log end with this broker's id as
/// the replica id; the leader's batches are appended as they are, offsets and epochs kept (copy-free: the bytes of the
/// response are what is written). One loop per leader; a failure reconnects after a pause. Out-of-sync partitions listed
/// in follower.replication.throttled.replicas are left out of the fetch while the follower quota is used up (KIP-73).
/// </summary>
internal sealed class ReplicaFetcher : IAsyncDisposable
{
    private const short FetchVersion = 12;
    private const short EpochVersion = 4;

    private readonly ReplicaManager _manager;
    private readonly int _leaderId;
    private readonly BrokerLog _log;
    private readonly int _waitMs;
    private readonly int _partitionMaxBytes;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly Task _loop;
    private Dictionary<(string, int), Followed> _partitions = [];
    private (string Host, int Port) _endpoint;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Followed(FollowedPartition partition)
    {
        public FollowedPartition Partition { get; } = partition;
        public bool Truncated { get; set; }
    }

    private readonly Network.InterBrokerSecurity? _security;

    public ReplicaFetcher(ReplicaManager manager, int leaderId, BrokerSettings settings, BrokerLog log)
    {
        _manager = manager;
        _leaderId = leaderId;
        _log = log;
        _security = settings.InterBroker;
        _waitMs = settings.Int("replica.fetch.wait.max.ms");
        _partitionMaxBytes = settings.Int("replica.fetch.max.bytes");
        _loop = Task.Run(RunAsync);
    }

    public void SetEndpoint(string host, int port)
    {
        lock (_lock)
        {
            if (_endpoint == (host, port)) return;
            _endpoint = (host, port);
        }
        _changed.TrySetResult();
    }

    /// <summary>The partitions to follow from this leader now; a partition whose leader epoch changed is truncated again.</summary>
    public void SetPartitions(IReadOnlyList<FollowedPartition> partitions)
    {
        lock (_lock)
        {
            var next = new Dictionary<(string, int), Followed>();
            foreach (var p in partitions)
            {
                var key = (p.Topic, p.Partition);
                next[key] = _partitions.TryGetValue(key, out var old) && old.Partition.LeaderEpoch == p.LeaderEpoch && ReferenceEquals(old.Partition.Log, p.Log)
                    ? old : new Followed(p);
            }
            _partitions = next;
        }
        _changed.TrySetResult();
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Dictionary<(string, int), Followed> partitions;
            (string Host, int Port) endpoint;
            lock (_lock)
            {
                partitions = _partitions;
                endpoint = _endpoint;
                if (_changed.Task.IsCompleted) _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            if (partitions.Count == 0 || endpoint.Host is null)
            {
                await WaitForChangeAsync(Timeout.InfiniteTimeSpan).ConfigureAwait(false);
                continue;
            }
            try
            {
                await using var channel = await BrokerChannel.ConnectAsync(endpoint.Host, endpoint.Port, $"replica-{_manager.NodeId}", _security, _stop.Token).ConfigureAwait(false);
                while (!_stop.IsCancellationRequested)
                {
                    lock (_lock)
                    {
                        if (!ReferenceEquals(partitions, _partitions) || endpoint != _endpoint) break;
                    }
                    if (partitions.Values.Any(p => !p.Truncated)) await TruncateAsync(channel, partitions.Values.Where(p => !p.Truncated).ToList()).ConfigureAwait(false);
                    await FetchAsync(channel, partitions.Values.Where(p => p.Truncated).ToList()).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ProtocolException or StorageException or ObjectDisposedException)
            {
                _log.Debug($"replication: fetching from broker {_leaderId} at {endpoint.Host}:{endpoint.Port} failed ({e.Message}); retrying.");
                await WaitForChangeAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                // A bug, not a fault of the network or the leader: said loudly, and the loop goes on, since a follower
                // whose fetcher ended would drop out of every ISR of this leader for good.
                _log.Error($"replication: fetching from broker {_leaderId} failed unexpectedly; retrying in a second. {e}");
                await WaitForChangeAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
        }
    }

    private async Task WaitForChangeAsync(TimeSpan timeout)
    {
        try
        {
            await _changed.Task.WaitAsync(timeout, _stop.Token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>KIP-279: asks the leader where our latest epoch ends on its log, and drops whatever we hold past that.</summary>
    private async Task TruncateAsync(BrokerChannel channel, List<Followed> partitions)
    {
        var request = new OffsetForLeaderEpochRequest { ReplicaId = _manager.NodeId };
        var asked = new List<Followed>();
        foreach (var group in partitions.GroupBy(p => p.Partition.Topic))
        {
            var topic = new OffsetForLeaderEpochRequest.OffsetForLeaderTopic { Topic = group.Key };
            foreach (var p in group)
            {
                var latest = p.Partition.Log.LatestEpoch;
                if (latest < 0)
                {
                    p.Truncated = true; // an empty log agrees with every leader
                    continue;
                }
                topic.Partitions.Add(new OffsetForLeaderEpochRequest.OffsetForLeaderPartition
                {
                    Partition = p.Partition.Partition,
                    CurrentLeaderEpoch = p.Partition.LeaderEpoch,
                    LeaderEpoch = latest,
                });
                asked.Add(p);
            }
            if (topic.Partitions.Count > 0) request.Topics.Add(topic);
        }
        if (request.Topics.Count == 0) return;
        var response = await channel.SendAsync<OffsetForLeaderEpochResponse>(request, EpochVersion, _stop.Token).ConfigureAwait(false);
        foreach (var topic in response.Topics)
            foreach (var result in topic.Partitions)
            {
                var p = asked.FirstOrDefault(a => a.Partition.Topic == topic.Topic && a.Partition.Partition == result.Partition);
                if (p is null) continue;
                if (result.ErrorCode != 0)
                {
                    // The leader does not lead it yet (or its epoch moved on): the next image brings the right leader.
                    await WaitForChangeAsync(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
                    continue;
                }
                var log = p.Partition.Log;
                var target = result.EndOffset;
                // KIP-279: when the leader knows an older epoch than ours, the logs agree only up to where that epoch
                // ends on both: ours may end it earlier than the leader does.
                if (result.LeaderEpoch >= 0 && result.LeaderEpoch < log.LatestEpoch && log.EndOffsetForEpoch(result.LeaderEpoch) is { EndOffset: >= 0 } own)
                    target = Math.Min(target, own.EndOffset);
                if (target >= 0 && target < log.LogEndOffset)
                {
                    _log.Info($"replication: {topic.Topic}-{result.Partition} truncated from {log.LogEndOffset} to {target} " +
                        $"(epoch {result.LeaderEpoch} ends there on leader {_leaderId}).");
                    log.TruncateTo(target);
                }
                p.Truncated = true;
            }
    }

    private async Task FetchAsync(BrokerChannel channel, List<Followed> partitions)
    {
        var throttle = _manager.Throttle;
        if (throttle.HasFollowerThrottles && throttle.Follower.IsExceeded())
        {
            // KIP-73: out-of-sync throttled partitions sit out while the follower quota is used up; the rest go on.
            var image = _manager.Image;
            var before = partitions.Count;
            partitions = [.. partitions.Where(p => !throttle.CountsAsFollower(p.Partition.Topic, p.Partition.Partition, image))];
            if (partitions.Count == 0 && before > 0)
            {
                await WaitForChangeAsync(throttle.Follower.TimeUntilAvailable() is var wait && wait < TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1)).ConfigureAwait(false);
                return;
            }
        }
        if (partitions.Count == 0)
        {
            await WaitForChangeAsync(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
            return;
        }
        var request = new FetchRequest
        {
            ReplicaId = _manager.NodeId,
            MaxWaitMs = _waitMs,
            MinBytes = 1,
            MaxBytes = Math.Max(_partitionMaxBytes, 10 * 1024 * 1024),
            IsolationLevel = 0,
            SessionId = 0,
            SessionEpoch = -1,
        };
        foreach (var group in partitions.GroupBy(p => p.Partition.Topic))
            request.Topics.Add(new FetchRequest.FetchTopic
            {
                Topic = group.Key,
                Partitions = [.. group.Select(p => new FetchRequest.FetchPartition
                {
                    Partition = p.Partition.Partition,
                    CurrentLeaderEpoch = p.Partition.LeaderEpoch,
                    FetchOffset = p.Partition.Log.LogEndOffset,
                    LogStartOffset = p.Partition.Log.LogStartOffset,
                    PartitionMaxBytes = _partitionMaxBytes,
                })],
            });
        // The response's records point into a pooled buffer, appended from there and returned after: no copy, no garbage.
        using var leased = await channel.SendPooledAsync<FetchResponse>(request, FetchVersion, _stop.Token).ConfigureAwait(false);
        var response = leased.Message;
        var anyError = false;
        foreach (var topic in response.Responses)
            foreach (var data in topic.Partitions)
            {
                var p = partitions.FirstOrDefault(x => x.Partition.Topic == topic.Topic && x.Partition.Partition == data.PartitionIndex);
                if (p is null) continue;
                if (data.ErrorCode != 0)
                {
                    anyError = true;
                    if (data.ErrorCode == (short)ErrorCode.OffsetOutOfRange && data.LogStartOffset > p.Partition.Log.LogEndOffset)
                    {
                        // Retention on the leader moved past everything we hold: start over at its log start.
                        p.Partition.Log.TruncateFullyAndStartAt(data.LogStartOffset);
                    }
                    continue;
                }
                if (data.Records is { } records && WholeBatches(records.Span) is > 0 and var length)
                {
                    await p.Partition.Log.AppendReplicatedAsync(records[..length], p.Partition.LeaderEpoch, _stop.Token).ConfigureAwait(false);
                    if (throttle.CountsAsFollower(p.Partition.Topic, p.Partition.Partition, _manager.Image)) throttle.Follower.Record(length);
                }
                _manager.RecordFollowerHighWatermark(p.Partition.Topic, p.Partition.Partition, p.Partition.Log, Math.Min(data.HighWatermark, p.Partition.Log.LogEndOffset));
            }
        if (anyError) await WaitForChangeAsync(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
    }

    /// <summary>The length of the whole batches at the start of <paramref name="records"/> (a fetch may end in a partial one).</summary>
    private static int WholeBatches(ReadOnlySpan<byte> records)
    {
        var position = 0;
        while (records.Length - position >= RecordBatchHeader.HeaderSize)
        {
            var size = RecordBatchHeader.ReadTotalSize(records[position..]);
            if (size <= 0 || position + size > records.Length) break;
            position += size;
        }
        return position;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
