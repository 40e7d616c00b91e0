using System.Net;
using System.Net.Sockets;

namespace Tributary.Broker.Tests;

/// <summary>Issue 12 #6: a start-up that fails stops everything it had started.</summary>
public sealed class StartupFailureTests
{
    /// <summary>The system clock, counting the timers created on it that are not yet disposed.</summary>
    private sealed class TimerCountingClock : TimeProvider
    {
        private int _live;

        public int LiveTimers => Volatile.Read(ref _live);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _live);
            return new Counted(this, System.CreateTimer(callback, state, dueTime, period));
        }

        private sealed class Counted(TimerCountingClock clock, ITimer inner) : ITimer
        {
            private int _disposed;

            public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref clock._live);
                inner.Dispose();
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }

    [Fact]
    public async Task A_port_in_use_fails_the_start_and_leaves_no_timer_running_and_the_data_directory_usable()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-startfail-" + Guid.NewGuid().ToString("N"));
        try
        {
            var clock = new TimerCountingClock();
            var config = new BrokerConfig { DataDir = dataDir, ListenHost = "127.0.0.1", ListenPort = port, Time = clock };
            config.Settings[TributaryServer.SchemaRegistryEnableSetting] = "false";
            config.Settings[TributaryServer.ConsoleListenersSetting] = "";
            await Assert.ThrowsAnyAsync<SocketException>(() => TributaryServer.StartAsync(config));
            // Before, the transaction coordinator's abort timer (and the coordinators' loops) kept running.
            Assert.Equal(0, clock.LiveTimers);

            // Nothing holds the data directory: a broker starts on it at once.
            occupied.Stop();
            var retry = new BrokerConfig { DataDir = dataDir, ListenHost = "127.0.0.1", ListenPort = 0 };
            retry.Settings[TributaryServer.SchemaRegistryEnableSetting] = "false";
            retry.Settings[TributaryServer.ConsoleListenersSetting] = "";
            await using var server = await TributaryServer.StartAsync(retry);
            Assert.True(server.Port > 0);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
