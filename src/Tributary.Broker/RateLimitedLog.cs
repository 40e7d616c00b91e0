namespace Tributary.Broker;

/// <summary>
/// One kind of log line that may repeat in bursts (a failed accept, a rejected connection): the first
/// <c>burst</c> lines of each interval are written, the rest are only counted, and when the interval ends one line
/// says how many were suppressed. So a storm costs at most <c>burst + 1</c> lines per interval, and no event goes
/// unreported. The interval starts with the first line after a quiet period and is timed by the injected clock.
/// </summary>
public sealed class RateLimitedLog(BrokerLog log, LogLevel level, int burst, TimeSpan interval, TimeProvider time)
{
    private readonly object _lock = new();
    private ITimer? _window;
    private int _written;
    private long _suppressed;
    private string _lastSuppressed = "";

    /// <summary>Writes the line unless this interval's burst is spent; then it is counted for the summary.</summary>
    public void Write(string message)
    {
        if (!log.IsEnabled(level)) return;
        lock (_lock)
        {
            // The window opens with its first line; the timer closes it and reports what it swallowed.
            _window ??= time.CreateTimer(_ => CloseWindow(), null, interval, Timeout.InfiniteTimeSpan);
            if (_written >= burst)
            {
                _suppressed++;
                _lastSuppressed = message;
                return;
            }
            _written++;
        }
        log.Write(level, message);
    }

    private void CloseWindow()
    {
        long suppressed;
        string last;
        lock (_lock)
        {
            _window?.Dispose();
            _window = null;
            _written = 0;
            suppressed = _suppressed;
            last = _lastSuppressed;
            _suppressed = 0;
            _lastSuppressed = "";
        }
        if (suppressed > 0)
            log.Write(level, $"suppressed {suppressed} similar messages in the last {interval.TotalSeconds:0.###} s (last: {last})");
    }
}
