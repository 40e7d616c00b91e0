namespace Tributary.Broker.Quotas;

/// <summary>
/// One budget of a rate quota, as the client quotas, the controller mutation quota and the ip connection quotas keep
/// it: <see cref="Tokens"/> as of <see cref="Stamp"/>, refilling at the rate up to the burst (what may be spent at
/// once). A budget never used is full. May go below zero: that debt is the throttle.
/// </summary>
internal readonly record struct QuotaBucket(double Tokens, long Stamp)
{
    /// <summary>The tokens at <paramref name="now"/>.</summary>
    public double TokensAt(double rate, double burst, long now, TimeProvider time) =>
        Math.Min(burst, Tokens + rate * time.GetElapsedTime(Stamp, now).TotalSeconds);
}
