using System.CommandLine;
using Confluent.Kafka;

namespace Tributary.Cli.Output;

/// <summary>
/// Wraps every command action so a failure becomes one red line on stderr and exit code 1.
/// Set TRIBUTARY_DEBUG=1 to see the full exception instead.
/// </summary>
public static class ErrorHandling
{
    public const int Failure = 1;

    /// <summary>Exit code for an interrupted command, as shells report a SIGINT death.</summary>
    public const int Interrupted = 130;

    public static void SetGuardedAction(this Command command, Func<ParseResult, CancellationToken, Task<int>> action)
        => command.SetAction(async (parseResult, ct) =>
        {
            try
            {
                // System.CommandLine installs its SIGINT/SIGTERM handlers only once the action has returned
                // its task; an action that blocks before its first await would otherwise be killed outright.
                await Task.Yield();
                return await action(parseResult, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return Interrupted;
            }
            catch (Exception e)
            {
                Terminal.Error(Describe(e));
                Terminal.Debug(e.ToString());
                return Failure;
            }
        });

    /// <summary>The message a user needs: Kafka error names and codes, not exception types.</summary>
    public static string Describe(Exception e) => e switch
    {
        CliException => e.Message,
        KafkaException k => Describe(k.Error),
        FileNotFoundException f => $"file not found: {f.FileName ?? f.Message}",
        DirectoryNotFoundException or UnauthorizedAccessException or IOException or FormatException or ArgumentException => e.Message,
        AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerExceptions[0]),
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    public static string Describe(Error error)
        => error.Code switch
        {
            ErrorCode.Local_Transport or ErrorCode.Local_AllBrokersDown or ErrorCode.Local_TimedOut
                => $"{error.Reason} (are the brokers reachable? set --brokers or TRIBUTARY_BROKERS)",
            _ => error.IsLocalError ? error.Reason : $"{error.Code} ({(int)error.Code}): {error.Reason}",
        };
}
