using System.Diagnostics;
using Xunit;

namespace Tributary.Testing;

/// <summary>
/// Waits for something another thread or process makes true: polls a condition with a short back-off (1 ms doubling
/// to 100 ms) on the real clock, and fails the test when the timeout passes, naming what it waited for and the last
/// state it saw. A condition that throws fails the test at once; one that tolerates a transient error catches it.
/// The one replacement for hand-written deadline loops, linked into every test project (tests/Shared).
/// </summary>
internal static class Eventually
{
    private static readonly TimeSpan MaxPause = TimeSpan.FromMilliseconds(100);

    /// <summary>Waits until <paramref name="condition"/> holds; <paramref name="state"/> describes what was last seen.</summary>
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string what, Func<object?>? state = null) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, what, state);

    /// <summary>Waits until <paramref name="condition"/> holds; <paramref name="state"/> describes what was last seen.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<object?>? state = null)
    {
        await ValueAsync(condition, held => held, timeout, what, state is null ? null : _ => state());
    }

    /// <summary>Blocking form of <see cref="TrueAsync(Func{bool}, TimeSpan, string, Func{object?}?)"/>, for synchronous tests.</summary>
    public static void True(Func<bool> condition, TimeSpan timeout, string what, Func<object?>? state = null) =>
        Value(condition, held => held, timeout, what, state is null ? null : _ => state());

    /// <summary>Polls <paramref name="probe"/> until its value satisfies <paramref name="done"/>, and returns that value.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what, Func<T, object?>? describe = null)
    {
        var clock = Stopwatch.StartNew();
        var pause = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            var value = await probe();
            if (done(value)) return value;
            if (clock.Elapsed >= timeout) Assert.Fail(Failure(what, timeout, describe is null ? value : describe(value)));
            await Task.Delay(pause);
            pause = pause * 2 < MaxPause ? pause * 2 : MaxPause;
        }
    }

    /// <summary>Polls <paramref name="probe"/> until its value satisfies <paramref name="done"/>, and returns that value.</summary>
    public static Task<T> ValueAsync<T>(Func<T> probe, Func<T, bool> done, TimeSpan timeout, string what, Func<T, object?>? describe = null) =>
        ValueAsync(() => Task.FromResult(probe()), done, timeout, what, describe);

    /// <summary>Blocking form of <see cref="ValueAsync{T}(Func{T}, Func{T, bool}, TimeSpan, string, Func{T, object?}?)"/>.</summary>
    public static T Value<T>(Func<T> probe, Func<T, bool> done, TimeSpan timeout, string what, Func<T, object?>? describe = null)
    {
        var clock = Stopwatch.StartNew();
        var pause = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            var value = probe();
            if (done(value)) return value;
            if (clock.Elapsed >= timeout) Assert.Fail(Failure(what, timeout, describe is null ? value : describe(value)));
            Thread.Sleep(pause);
            pause = pause * 2 < MaxPause ? pause * 2 : MaxPause;
        }
    }

    private static string Failure(string what, TimeSpan timeout, object? last) =>
        $"timed out after {timeout.TotalSeconds:0.###} s waiting for {what}; last seen: {last ?? "null"}";
}
