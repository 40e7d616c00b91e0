using System.Diagnostics;

namespace Tributary.Cli.Bench;

/// <summary>
/// A fixed-rate send schedule: how many records should have been sent by now. Open loop, as latency benchmarks need:
/// a stall is followed by a catch-up burst, so queueing shows in the percentiles instead of lowering the offered load.
/// </summary>
public sealed class RatePacer(double recordsPerSecond)
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly double _ticksPerRecord = Stopwatch.Frequency / recordsPerSecond;

    public long Due() => (long)((Stopwatch.GetTimestamp() - _start) / _ticksPerRecord);
}
