using System.Diagnostics;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Holds the cleaner to a byte rate (log.cleaner.io.max.bytes.per.second): after each chunk of IO it sleeps for as
/// long as the bytes since the window started are ahead of the allowed rate. The window restarts every second, so
/// an idle spell does not buy a burst.
/// </summary>
internal sealed class Throttler(double bytesPerSecond)
{
    private readonly Stopwatch _window = Stopwatch.StartNew();
    private long _bytes;

    public double BytesPerSecond { get; set; } = bytesPerSecond;

    public void Account(long bytes, CancellationToken ct)
    {
        double rate = BytesPerSecond;
        if (rate <= 0 || rate >= double.MaxValue / 2)
        {
            return;
        }

        _bytes += bytes;
        double ahead = _bytes / rate - _window.Elapsed.TotalSeconds;
        if (ahead > 0)
        {
            ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(Math.Min(ahead, 10)));
        }

        if (_window.Elapsed.TotalSeconds >= 1)
        {
            _window.Restart();
            _bytes = 0;
        }
    }
}
