using System.Collections.Frozen;
using Tributary.Broker.Cluster;

namespace Tributary.Broker.Quotas;

/// <summary>
/// Kafka's client quotas: <c>producer_byte_rate</c> (bytes produced per second), <c>consumer_byte_rate</c> (bytes
/// fetched per second), <c>request_percentage</c> (handler time, in percent of one thread) and, kept by
/// <see cref="Metadata.ControllerMutationQuota"/>, <c>controller_mutation_rate</c>; set per user, client id or both, with
/// defaults, in the cluster metadata (AlterClientQuotas). The quota that applies to a request is the first of Kafka's
/// eight levels that has one (user+client id, user+default client, user, default user+client id, default user+default
/// client, default user, client id, default client), and it is counted per matched entity: a default quota gives every
/// user or client id a budget of its own.
/// <para>
/// Each budget is a token bucket that refills at the quota and holds quota × <c>quota.window.num</c> ×
/// <c>quota.window.size.seconds</c>, Kafka's sample span: what a request takes beyond it is the throttle time, the
/// time the bucket needs to refill to zero. The response carries it and the connection is not read for that long
/// (KIP-219), so a client's rate converges on its quota whatever it does.
/// </para>
/// </summary>
public sealed class ClientQuotaManager
{
    private const int MaxTracked = 10_000;
    private readonly Func<MetadataImage> _image;
    private readonly TimeProvider _time;
    private readonly double _spanSeconds;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Key, string? User, string? Client), QuotaBucket> _buckets = [];
    private FrozenDictionary<string, IReadOnlyDictionary<string, double>>? _resolvedFor;
    private readonly Dictionary<(string QuotaKey, string User, string Client), (double Quota, string? User, string? Client)?> _resolved = [];

    public ClientQuotaManager(Func<MetadataImage> image, TimeProvider time, int windowNum, int windowSeconds)
    {
        _image = image;
        _time = time;
        _spanSeconds = Math.Max(1, windowNum * windowSeconds);
    }

    private FrozenDictionary<string, IReadOnlyDictionary<string, double>>? _measuredFor;
    private bool _measures;

    /// <summary>True when some request_percentage quota exists: only then is handler time measured.</summary>
    public bool MeasuresRequestTime
    {
        get
        {
            var quotas = _image().ClientQuotas;
            if (!ReferenceEquals(Volatile.Read(ref _measuredFor), quotas))
            {
                _measures = quotas.Values.Any(q => q.ContainsKey("request_percentage"));
                Volatile.Write(ref _measuredFor, quotas);
            }
            return _measures;
        }
    }

    /// <summary>Counts produced bytes; the throttle time in ms (0: within quota).</summary>
    public int RecordProduce(string principal, string? clientId, long bytes) => Record("producer_byte_rate", principal, clientId, bytes, false, out _);

    /// <summary>
    /// Counts the bytes a fetch response would carry; the throttle time in ms. As in Kafka, a response that would exceed
    /// the quota is withheld (<paramref name="withhold"/>: the caller answers empty, with the throttle time) and not
    /// counted. One larger than the whole budget goes out when the budget is full, or a consumer whose fetch size
    /// exceeds its quota could never progress.
    /// </summary>
    public int RecordFetch(string principal, string? clientId, long bytes, out bool withhold) =>
        Record("consumer_byte_rate", principal, clientId, bytes, withholdable: true, out withhold);

    /// <summary>Counts handler time (a quota of 100 is one thread's whole time); the throttle time in ms.</summary>
    public int RecordRequestTime(string principal, string? clientId, TimeSpan elapsed) =>
        Record("request_percentage", principal, clientId, elapsed.TotalSeconds * 100, false, out _);

    /// <summary>The quota of <paramref name="quotaKey"/> that applies to a client, or null.</summary>
    public double? QuotaFor(string quotaKey, string principal, string? clientId) => Resolve(quotaKey, UserOf(principal), clientId ?? "")?.Quota;

    private int Record(string quotaKey, string principal, string? clientId, double amount, bool withholdable, out bool withheld)
    {
        withheld = false;
        var quotas = _image().ClientQuotas;
        if (quotas.Count == 0) return 0;
        var user = UserOf(principal);
        if (Resolve(quotaKey, user, clientId ?? "") is not { } matched || matched.Quota <= 0) return 0;
        var key = (quotaKey, matched.User, matched.Client);
        var burst = matched.Quota * _spanSeconds;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                if (_buckets.Count >= MaxTracked) _buckets.Clear(); // rotating ids: forgetting full budgets is safe enough
                bucket = new QuotaBucket(burst, now);
            }
            var before = bucket.TokensAt(matched.Quota, burst, now, _time);
            var tokens = before - amount;
            withheld = tokens < 0 && withholdable && before < burst;
            _buckets[key] = new QuotaBucket(withheld ? before : tokens, now);
            return tokens >= 0 ? 0 : (int)Math.Min(int.MaxValue, Math.Ceiling(-tokens / matched.Quota * 1000));
        }
    }

    /// <summary>User principals are quota'd by their name ("User:alice" → alice; unauthenticated → ANONYMOUS).</summary>
    public static string UserOf(string principal) => principal.StartsWith("User:", StringComparison.Ordinal) ? principal[5..] : principal;

    private (double Quota, string? User, string? Client)? Resolve(string quotaKey, string user, string client)
    {
        var quotas = _image().ClientQuotas;
        lock (_lock)
        {
            if (!ReferenceEquals(_resolvedFor, quotas))
            {
                _resolved.Clear();
                _resolvedFor = quotas;
            }
            if (_resolved.TryGetValue((quotaKey, user, client), out var cached)) return cached;
            var found = Match(quotas, quotaKey, user, client);
            if (_resolved.Count >= MaxTracked) _resolved.Clear();
            _resolved[(quotaKey, user, client)] = found;
            return found;
        }
    }

    /// <summary>
    /// The quota of <paramref name="quotaKey"/> at the first of Kafka's levels that has one, with the user and client
    /// id its budget is counted by (null parts are not counted by); null when no level has one.
    /// </summary>
    public static (double Quota, string? User, string? Client)? Match(
        FrozenDictionary<string, IReadOnlyDictionary<string, double>> quotas, string quotaKey, string user, string client)
    {
        foreach (var (entity, userPart, clientPart) in Levels(user, client))
            if (quotas.TryGetValue(entity.Key, out var values) && values.TryGetValue(quotaKey, out var quota))
                return (quota, userPart, clientPart);
        return null;
    }

    /// <summary>Kafka's eight levels, most specific first, each with the parts its budget is counted by.</summary>
    private static IEnumerable<(QuotaEntity Entity, string? User, string? Client)> Levels(string user, string client)
    {
        yield return (new QuotaEntity(true, user, true, client), user, client);
        yield return (new QuotaEntity(true, user, true, null), user, client);
        yield return (new QuotaEntity(true, user, false, null), user, null);
        yield return (new QuotaEntity(true, null, true, client), user, client);
        yield return (new QuotaEntity(true, null, true, null), user, client);
        yield return (new QuotaEntity(true, null, false, null), user, null);
        yield return (new QuotaEntity(false, null, true, client), null, client);
        yield return (new QuotaEntity(false, null, true, null), null, client);
    }
}
