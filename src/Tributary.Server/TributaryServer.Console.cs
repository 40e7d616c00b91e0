using Tributary.Server.Console;

namespace Tributary.Server;

/// <summary>
/// The console port (<see cref="ConsoleServer"/>): metrics and health probes on <c>console.listeners</c> (default
/// http://0.0.0.0:8080; empty turns it off; ephemeral servers leave it off unless asked). It starts once the broker has
/// started, so its logs are recovered and its Kafka listeners accept connections; readiness then waits for the group and
/// transaction coordinators to load their shards. A console that cannot bind is logged and left off: the broker still
/// serves Kafka.
/// </summary>
public sealed partial class TributaryServer
{
    public const string ConsoleListenersSetting = "console.listeners";

    private ConsoleServer? _console;

    /// <summary>Every console listener's URL (http://host:port); empty when it is off.</summary>
    public IReadOnlyList<string> ConsoleUrls => _console?.Urls ?? [];

    private static async Task<TributaryServer> WithConsoleAsync(Task<TributaryServer> starting, CancellationToken cancellationToken)
    {
        var server = await starting.ConfigureAwait(false);
        if (server.State.Settings.Text(ConsoleListenersSetting) is not { Length: > 0 } listeners) return server;
        try
        {
            server._console = await ConsoleServer.StartAsync(listeners,
                [server.State.Metrics.Meter, server.StorageMetrics.Meter, server.Groups.Runtime.Meter, server.Transactions.Runtime.Meter],
                server.NotReadyReason, cancellationToken).ConfigureAwait(false);
            server.State.Log.Info($"console (metrics, health) listening on {string.Join(", ", server._console.Urls)}");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException or UriFormatException or ArgumentException)
        {
            server.State.Log.Error($"console not started on {listeners}: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            await server.StopAsync().ConfigureAwait(false);
            throw;
        }
        return server;
    }

    /// <summary>Why a readiness probe should wait, or null when the broker serves produce, fetch and group requests.</summary>
    private string? NotReadyReason() =>
        Volatile.Read(ref _stopped) != 0 ? "the broker is stopping"
        : Halted.IsCompleted ? $"the broker halted: {Halted.Result}"
        : !Groups.IsLoaded ? "the group coordinator is loading its partitions"
        : !Transactions.IsLoaded ? "the transaction coordinator is loading its partitions"
        : null;

    private async Task StopConsoleAsync()
    {
        if (_console is { } console)
        {
            _console = null;
            await console.DisposeAsync().ConfigureAwait(false);
        }
    }
}
