using System.CommandLine;
using Tributary.Cli.Commands;

namespace Tributary.Cli;

public static class Program
{
    /// <summary>The command tree. New groups (group, bench, registry, txn) plug in here, one file each under Commands/.</summary>
    public static RootCommand CreateRootCommand() => new("Tributary: a Kafka-compatible event streaming broker, and a client for any Kafka cluster")
    {
        ServeCommand.Create(),
        TopicCommands.Create(),
        ProduceCommand.Create(),
        ConsumeCommand.Create(),
        ClusterCommands.Create(),
        PartitionCommands.Create(),
        BrokerCommands.Create(),
        UserCommands.Create(),
        QuotaCommands.Create(),
        RegistryCommands.Create(),
        BenchCommands.Create(),
        GroupCommands.Create(),
        TxnCommands.Create(), TxnCommands.CreateProducer(),
        AclCommands.Create(),
    };

    public static Task<int> Main(string[] args)
    {
        // '@' starts a timestamp in `consume --from @1700000000000`, not a response file.
        var parserConfig = new ParserConfiguration { ResponseFileTokenReplacer = null };
        var invocationConfig = new InvocationConfiguration
        {
            EnableDefaultExceptionHandler = false, // every action reports its own errors in one line
            ProcessTerminationTimeout = TimeSpan.FromSeconds(30), // room for `serve` to stop cleanly
        };
        return CreateRootCommand().Parse(args, parserConfig).InvokeAsync(invocationConfig);
    }
}
