namespace Tributary.Broker.Metadata;

/// <summary>
/// Kafka's controller mutation quota (KIP-599): a token bucket per client id, counting partitions created
/// (CreateTopics, CreatePartitions, auto-creation) and deleted (DeleteTopics). The bucket holds at most
/// rate × <c>controller.quota.window.num</c> × <c>controller.quota.window.size.seconds</c> tokens and refills at the
/// rate. As Kafka does in strict mode (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+, and here
/// auto-creation), a mutation is refused while the bucket is below zero, and otherwise admitted whole even if it takes
/// the bucket below zero; the throttle time is how long the bucket needs to climb back to zero. Older versions are
/// admitted and only told the throttle time (Kafka's permissive mode).
/// </summary>
public sealed class ControllerMutationQuota(TopicLimits limits, TimeProvider time)
{
    private const int MaxTrackedClients = 10_000;
    private readonly Dictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly double _burst = limits.MutationRate * limits.QuotaWindowNum * limits.QuotaWindowSizeSeconds;

    public bool Enabled => limits.MutationRate > 0;

    /// <summary>Milliseconds until the client may mutate again; 0 when it may now.</summary>
    public int ThrottleTimeMs(string? clientId)
    {
        if (!Enabled) return 0;
        lock (_buckets)
        {
            var tokens = Refill(clientId ?? "");
            return tokens >= 0 ? 0 : (int)Math.Ceiling(-tokens / limits.MutationRate * 1000);
        }
    }

    /// <summary>
    /// Strict mode: records <paramref name="partitions"/> and returns 0, or, when the bucket is already below zero,
    /// records nothing and returns the throttle time.
    /// </summary>
    public int TryRecord(string? clientId, int partitions)
    {
        if (!Enabled) return 0;
        lock (_buckets)
        {
            var key = clientId ?? "";
            var tokens = Refill(key);
            if (tokens < 0) return (int)Math.Ceiling(-tokens / limits.MutationRate * 1000);
            _buckets[key] = _buckets[key] with { Tokens = tokens - partitions };
            return 0;
        }
    }

    /// <summary>Permissive mode: records the mutation whatever the bucket holds.</summary>
    public void Record(string? clientId, int partitions)
    {
        if (!Enabled) return;
        lock (_buckets)
        {
            var key = clientId ?? "";
            // Refill first: it stamps the bucket with now, which the recorded bucket must keep.
            var tokens = Refill(key);
            _buckets[key] = _buckets[key] with { Tokens = tokens - partitions };
        }
    }

    private double Refill(string key)
    {
        var now = time.GetTimestamp();
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            if (_buckets.Count >= MaxTrackedClients) ForgetFullBuckets(now);
            _buckets[key] = new Bucket(_burst, now);
            return _burst;
        }
        var tokens = Math.Min(_burst, bucket.Tokens + limits.MutationRate * time.GetElapsedTime(bucket.Timestamp, now).TotalSeconds);
        _buckets[key] = new Bucket(tokens, now);
        return tokens;
    }

    /// <summary>A full bucket is the same as no bucket: dropping them bounds the memory a client rotating ids can use.</summary>
    private void ForgetFullBuckets(long now)
    {
        foreach (var (key, bucket) in _buckets.ToList())
            if (bucket.Tokens + limits.MutationRate * time.GetElapsedTime(bucket.Timestamp, now).TotalSeconds >= _burst)
                _buckets.Remove(key);
    }

    private readonly record struct Bucket(double Tokens, long Timestamp);
}
