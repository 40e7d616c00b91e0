using Tributary.Broker.Quotas;

namespace Tributary.Broker.Metadata;

/// <summary>
/// Kafka's controller mutation quota (KIP-599): a token bucket counting partitions created (CreateTopics,
/// CreatePartitions, auto-creation) and deleted (DeleteTopics). The rate is the <c>controller_mutation_rate</c> client
/// quota that applies to the caller (AlterClientQuotas, at the user / client-id level that matched, each matched entity
/// with a budget of its own), else <c>controller.mutation.rate</c> per client id. The bucket holds at most
/// rate × <c>controller.quota.window.num</c> × <c>controller.quota.window.size.seconds</c> tokens and refills at the
/// rate. As Kafka does in strict mode (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+, and here
/// auto-creation), a mutation is refused while the bucket is below zero, and otherwise admitted whole even if it takes
/// the bucket below zero; the throttle time is how long the bucket needs to climb back to zero. Older versions are
/// admitted and only told the throttle time (Kafka's permissive mode).
/// </summary>
public sealed class ControllerMutationQuota(TopicLimits limits, TimeProvider time, Func<Cluster.MetadataImage>? image = null)
{
    private const string QuotaKey = "controller_mutation_rate";
    private const int MaxTrackedClients = 10_000;
    private readonly Dictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>Milliseconds until the client may mutate again; 0 when it may now.</summary>
    public int ThrottleTimeMs(string principal, string? clientId)
    {
        if (Budget(principal, clientId) is not var (key, rate)) return 0;
        lock (_buckets)
        {
            var tokens = Refill(key, rate);
            return tokens >= 0 ? 0 : (int)Math.Ceiling(-tokens / rate * 1000);
        }
    }

    /// <summary>
    /// Strict mode: records <paramref name="partitions"/> and returns 0, or, when the bucket is already below zero,
    /// records nothing and returns the throttle time.
    /// </summary>
    public int TryRecord(string principal, string? clientId, int partitions)
    {
        if (Budget(principal, clientId) is not var (key, rate)) return 0;
        lock (_buckets)
        {
            var tokens = Refill(key, rate);
            if (tokens < 0) return (int)Math.Ceiling(-tokens / rate * 1000);
            Spend(key, tokens - partitions);
            return 0;
        }
    }

    /// <summary>Permissive mode: records the mutation whatever the bucket holds.</summary>
    public void Record(string principal, string? clientId, int partitions)
    {
        if (Budget(principal, clientId) is not var (key, rate)) return;
        lock (_buckets)
        {
            // Refill first: it stamps the bucket with now, which the recorded bucket must keep.
            var tokens = Refill(key, rate);
            Spend(key, tokens - partitions);
        }
    }

    /// <summary>The bucket a caller draws on and its rate; null when unlimited.</summary>
    private (string Key, double Rate)? Budget(string principal, string? clientId)
    {
        if (image?.Invoke().ClientQuotas is { Count: > 0 } quotas
            && ClientQuotaManager.Match(quotas, QuotaKey, ClientQuotaManager.UserOf(principal), clientId ?? "") is var (rate, user, client))
            return ($"quota:{user}\0{client}", rate);
        return limits.MutationRate > 0 ? ("client-id:" + clientId, limits.MutationRate) : null;
    }

    private double Burst(double rate) => rate * limits.QuotaWindowNum * limits.QuotaWindowSizeSeconds;

    private double Refill(string key, double rate)
    {
        var now = time.GetTimestamp();
        var burst = Burst(rate);
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            if (_buckets.Count >= MaxTrackedClients) ForgetFullBuckets(now);
            _buckets[key] = new Bucket(new QuotaBucket(burst, now), rate);
            return burst;
        }
        var tokens = bucket.Budget.TokensAt(rate, burst, now, time);
        _buckets[key] = new Bucket(new QuotaBucket(tokens, now), rate);
        return tokens;
    }

    /// <summary>Leaves a just-refilled bucket holding <paramref name="tokens"/>, its stamp kept.</summary>
    private void Spend(string key, double tokens) => _buckets[key] = _buckets[key] with { Budget = _buckets[key].Budget with { Tokens = tokens } };

    /// <summary>A full bucket is the same as no bucket: dropping them bounds the memory a client rotating ids can use.</summary>
    private void ForgetFullBuckets(long now)
    {
        foreach (var (key, bucket) in _buckets.ToList())
            if (bucket.Budget.TokensAt(bucket.Rate, Burst(bucket.Rate), now, time) >= Burst(bucket.Rate))
                _buckets.Remove(key);
    }

    private readonly record struct Bucket(QuotaBucket Budget, double Rate);
}
