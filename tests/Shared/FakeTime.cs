using Microsoft.Extensions.Time.Testing;

namespace Tributary.Testing;

/// <summary>
/// The one fake clock of the tests is <see cref="FakeTimeProvider"/>: time, timestamps and timers move only when a test
/// advances it, and due timers fire inside <see cref="FakeTimeProvider.Advance"/>. These members keep the tests in the
/// milliseconds that Kafka's settings and record timestamps use.
/// </summary>
internal static class FakeTime
{
    /// <summary>Where every fake clock starts: 1,700,000,000,000 ms after the Unix epoch (2023-11-14T22:13:20Z).</summary>
    public static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    /// <summary>A fake clock at <see cref="Start"/>.</summary>
    public static FakeTimeProvider Create() => new(Start);

    extension(FakeTimeProvider time)
    {
        /// <summary>The fake time in Unix milliseconds.</summary>
        public long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();

        /// <summary>Moves the clock on by <paramref name="ms"/> milliseconds, firing the timers that fall due.</summary>
        public void Advance(long ms) => time.Advance(TimeSpan.FromMilliseconds(ms));
    }
}
