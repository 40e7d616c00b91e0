namespace Tributary.Broker.Replication;

/// <summary>
/// A byte-rate quota: tokens refill at <see cref="Rate"/> bytes a second up to one second's worth, a transfer is let
/// through while any token is left and is charged in full after (so the bucket may go negative and the next transfer
/// waits for it to refill). That is how Kafka's replication quota behaves: it checks "quota exceeded" before a fetch
/// and records the bytes after, so one fetch may overshoot and the average still holds. Locks, never allocates.
/// </summary>
public sealed class TokenBucket(TimeProvider time)
{
    /// <summary>The rate that means no limit (Kafka's default for the replication throttle rates).</summary>
    public const long Unlimited = long.MaxValue;

    private readonly object _lock = new();
    private long _rate = Unlimited;
    private double _tokens;
    private long _stamp;

    /// <summary>Bytes a second; <see cref="Unlimited"/> for none. Changing it starts the bucket full.</summary>
    public long Rate
    {
        get => Volatile.Read(ref _rate);
        set
        {
            lock (_lock)
            {
                if (_rate == value) return;
                _tokens = value;
                _stamp = time.GetTimestamp();
                Volatile.Write(ref _rate, value);
            }
        }
    }

    /// <summary>True when no token is left: a transfer now would exceed the rate.</summary>
    public bool IsExceeded()
    {
        if (Rate == Unlimited) return false;
        lock (_lock)
        {
            Refill();
            return _tokens <= 0;
        }
    }

    /// <summary>Charges <paramref name="bytes"/> that were sent or received.</summary>
    public void Record(long bytes)
    {
        if (Rate == Unlimited || bytes <= 0) return;
        lock (_lock)
        {
            Refill();
            _tokens -= bytes;
        }
    }

    /// <summary>How long until a token is back (zero when one is).</summary>
    public TimeSpan TimeUntilAvailable()
    {
        var rate = Rate;
        if (rate == Unlimited) return TimeSpan.Zero;
        lock (_lock)
        {
            Refill();
            if (_tokens > 0) return TimeSpan.Zero;
            return rate <= 0 ? TimeSpan.MaxValue : TimeSpan.FromSeconds((1 - _tokens) / rate);
        }
    }

    private void Refill()
    {
        var now = time.GetTimestamp();
        var seconds = (now - _stamp) / (double)time.TimestampFrequency;
        _stamp = now;
        _tokens = Math.Min(_rate, _tokens + seconds * _rate);
    }
}
