using System.CommandLine;
using Tributary.Broker;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary serve</c>: runs a broker in this process until SIGINT or SIGTERM.
/// Settings come from a server.properties file first, then from flags, so flags always win.
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string?>("--data-dir", "-d") { Description = "Directory for the log and metadata [default ./data]" };
        var listen = new Option<string?>("--listen", "-l") { Description = "HOST:PORT to accept clients on [default 0.0.0.0:9092]" };
        var advertise = new Option<string?>("--advertise", "-a") { Description = "HOST:PORT clients are told to connect to [default: the listen address]" };
        var configFile = new Option<FileInfo?>("--config", "-c") { Description = "Kafka server.properties file (Kafka setting names)" };
        var set = new Option<string[]>("--set", "-s") { Description = "Kafka setting name=value, overriding the file (repeatable)" };
        var helpConfig = new Option<bool>("--help-config") { Description = "List every broker setting (name, type, default, meaning) and exit" };

        var command = new Command("serve", "Run a Tributary broker")
        {
            dataDir, listen, advertise, configFile, set, helpConfig,
        };
        command.SetGuardedAction(async (parse, ct) =>
        {
            if (parse.GetValue(helpConfig))
            {
                Console.Out.Write(SettingsHelp());
                return 0;
            }
            var config = BuildConfig(
                parse.GetValue(configFile)?.FullName,
                parse.GetValue(set),
                parse.GetValue(dataDir),
                parse.GetValue(listen),
                parse.GetValue(advertise));
            return await RunAsync(config, ct);
        });
        return command;
    }

    /// <summary>Builds the broker configuration: file, then --set, then the dedicated flags.</summary>
    public static BrokerConfig BuildConfig(string? configFile, string[]? sets, string? dataDir, string? listen, string? advertise)
    {
        var config = configFile is null ? new BrokerConfig() : BrokerConfig.FromPropertiesFile(configFile);
        foreach (var assignment in sets ?? [])
        {
            config.Set(assignment);
        }
        if (dataDir is not null)
        {
            config.DataDir = dataDir;
        }
        if (listen is not null)
        {
            (config.ListenHost, config.ListenPort) = ParseHostPort(listen, "--listen");
            config.ListenHost = config.ListenHost.Length == 0 ? "0.0.0.0" : config.ListenHost;
        }
        if (advertise is not null)
        {
            (var host, config.AdvertisedPort) = ParseHostPort(advertise, "--advertise");
            config.AdvertisedHost = host.Length == 0 ? null : host;
        }
        config.DataDir = Path.GetFullPath(config.DataDir);
        return config;
    }

    /// <summary>The broker settings table, one block per setting, for <c>--help-config</c>.</summary>
    public static string SettingsHelp()
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine("Broker settings (--set name=value, or name=value lines in a --config file). listeners, advertised.listeners,");
        text.AppendLine("log.dirs and log.dir set where to listen and store. None can be changed while the broker runs.");
        foreach (var def in BrokerSettingDefinitions.All)
        {
            text.AppendLine();
            text.Append(def.Name).Append("  (").Append(def.Type.ToString().ToLowerInvariant()).Append(", default ").Append(def.Default is { Length: > 0 } d ? d : def.Default is null ? "computed" : "empty").AppendLine(")");
            text.Append("    ").AppendLine(def.Doc);
        }
        return text.ToString();
    }

    private static (string Host, int Port) ParseHostPort(string text, string flag)
        => BrokerConfig.TryParseHostPort(text, out var host, out var port)
            ? (host, port)
            : throw new CliException($"{flag}: expected HOST:PORT, got '{text}'");

    /// <summary>
    /// Runs until the invocation token fires. System.CommandLine cancels it on SIGINT and SIGTERM (through
    /// PosixSignalRegistration) and then waits up to the ProcessTerminationTimeout set in Program for
    /// this method to return, which leaves StopAsync time to close connections and flush the logs.
    /// </summary>
    private static async Task<int> RunAsync(BrokerConfig config, CancellationToken stop)
    {
        var server = await TributaryServer.StartAsync(config, stop);
        string? halted = null;
        try
        {
            // Printed once every listener accepts (StartAsync returns after the registry's bind), so a script that
            // waits for this line can use every port at once.
            var registry = server.SchemaRegistryUrl is { } url ? $", schema registry on {url}" : "";
            var more = string.Concat(config.Listeners.Skip(1).Select(l =>
                $", {l.Name} on {FormatHostPort(l.Host, server.PortOf(l.Name))} (advertised {server.BootstrapServersFor(l.Name)})"));
            Terminal.Info($"Tributary listening on {FormatHostPort(config.ListenHost, server.Port)} (advertised {server.BootstrapServers}){more}{registry}, data in {string.Join(",", config.DataDirs)}");
            try
            {
                // A fatal storage failure (the metadata log directory, or every one, offline) stops the broker, as Kafka halts.
                var finished = await Task.WhenAny(Task.Delay(Timeout.Infinite, stop), server.Halted);
                if (finished == server.Halted) halted = await server.Halted;
            }
            catch (OperationCanceledException)
            {
            }
            Terminal.Note(halted is null ? "shutting down…" : $"stopped: {halted}");
        }
        finally
        {
            await server.StopAsync();
        }
        return halted is null ? 0 : 1;
    }

    private static string FormatHostPort(string host, int port) => host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";
}
