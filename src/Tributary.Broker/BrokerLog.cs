namespace Tributary.Broker;

public enum LogLevel { Debug, Info, Warn, Error, None }

/// <summary>
/// The broker's log lines: one line each, timestamped, to standard error. Small on purpose: the broker logs rarely
/// (start, stop, a connection closed for bad input, a failed disk) and never on the hot path.
/// </summary>
public sealed class BrokerLog(LogLevel minimum, TextWriter? output = null)
{
    private readonly TextWriter _output = output ?? Console.Error;
    private readonly object _lock = new();

    public LogLevel Minimum { get; } = minimum;

    public void Debug(string message) => Write(LogLevel.Debug, message);
    public void Info(string message) => Write(LogLevel.Info, message);
    public void Warn(string message) => Write(LogLevel.Warn, message);
    public void Error(string message) => Write(LogLevel.Error, message);

    /// <summary>Where the coordination runtimes report (group, transaction): at the level they give.</summary>
    public void Coordinator(Coordination.CoordinatorLogLevel level, string message) => Write(level switch
    {
        Coordination.CoordinatorLogLevel.Debug => LogLevel.Debug,
        Coordination.CoordinatorLogLevel.Info => LogLevel.Info,
        Coordination.CoordinatorLogLevel.Warn => LogLevel.Warn,
        _ => LogLevel.Error,
    }, message);

    public bool IsEnabled(LogLevel level) => level >= Minimum;

    public void Write(LogLevel level, string message)
    {
        if (level < Minimum) return;
        var line = $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level.ToString().ToUpperInvariant(),-5} {message}";
        lock (_lock) _output.WriteLine(line);
    }
}
