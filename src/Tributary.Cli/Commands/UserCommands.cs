using System.CommandLine;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary user scram set|describe|delete</c>: SCRAM credentials through KIP-554's AlterUserScramCredentials and
/// DescribeUserScramCredentials, as <c>kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=...]'</c> does. The
/// password stays on this machine: the client salts and hashes it, and only the salted password is sent. Works against
/// any cluster that serves KIP-554, over any listener (-X security.protocol=...).
/// </summary>
public static class UserCommands
{
    public static Command Create() => new Command("user", "Manage users") { ScramCommand() }.WithClientOptions();

    private static Command ScramCommand()
    {
        var command = new Command("scram", "SCRAM credentials (SCRAM-SHA-256, SCRAM-SHA-512)");
        var user = new Argument<string>("user") { Description = "The user name" };
        var mechanism = new Option<string>("--mechanism", "-m")
        {
            Description = "SCRAM-SHA-256 or SCRAM-SHA-512",
            DefaultValueFactory = _ => "SCRAM-SHA-256",
        };
        var password = new Option<string?>("--password", "-p") { Description = "The password (default: read from the TRIBUTARY_PASSWORD variable)" };
        var iterations = new Option<int>("--iterations") { Description = "PBKDF2 iterations (4096..16384)", DefaultValueFactory = _ => 8192 };

        var set = new Command("set", "Create or replace a user's credential") { user, mechanism, password, iterations };
        set.SetGuardedAction(async (parse, _) =>
        {
            var secret = parse.GetValue(password) ?? Environment.GetEnvironmentVariable("TRIBUTARY_PASSWORD")
                ?? throw new CliException("give the password with --password or the TRIBUTARY_PASSWORD variable");
            using var admin = ClientOptions.Admin(parse);
            await AlterAsync(admin, new UserScramCredentialUpsertion
            {
                User = parse.GetValue(user)!,
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = Mechanism(parse.GetValue(mechanism)!), Iterations = parse.GetValue(iterations) },
                Password = System.Text.Encoding.UTF8.GetBytes(secret),
            });
            Console.Out.WriteLine($"Set {parse.GetValue(mechanism)!.ToUpperInvariant()} credential of {parse.GetValue(user)}.");
            return 0;
        });

        var delete = new Command("delete", "Remove a user's credential") { user, mechanism };
        delete.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            await AlterAsync(admin, new UserScramCredentialDeletion { User = parse.GetValue(user)!, Mechanism = Mechanism(parse.GetValue(mechanism)!) });
            Console.Out.WriteLine($"Deleted {parse.GetValue(mechanism)!.ToUpperInvariant()} credential of {parse.GetValue(user)}.");
            return 0;
        });

        var users = new Argument<string[]>("users") { Description = "Users to describe (default: every user with a credential)", Arity = ArgumentArity.ZeroOrMore };
        var describe = new Command("describe", "List users' mechanisms and iterations") { users };
        describe.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            DescribeUserScramCredentialsResult result;
            try
            {
                result = await admin.DescribeUserScramCredentialsAsync(parse.GetValue(users) ?? []);
            }
            catch (DescribeUserScramCredentialsException e)
            {
                throw new CliException(string.Join("; ", e.Results.UserScramCredentialsDescriptions.Where(d => d.Error.IsError).Select(d => $"{d.User}: {d.Error.Reason}")));
            }
            var table = Terminal.NewTable("USER", "MECHANISM", "#ITERATIONS");
            foreach (var description in result.UserScramCredentialsDescriptions.OrderBy(d => d.User, StringComparer.Ordinal))
                foreach (var info in description.ScramCredentialInfos)
                    table.AddText(description.User, info.Mechanism == ScramMechanism.ScramSha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512",
                        info.Iterations.ToString(CultureInfo.InvariantCulture));
            Terminal.Write(table);
            return 0;
        });

        command.Subcommands.Add(set);
        command.Subcommands.Add(delete);
        command.Subcommands.Add(describe);
        return command;
    }

    private static ScramMechanism Mechanism(string name) => name.ToUpperInvariant() switch
    {
        "SCRAM-SHA-256" => ScramMechanism.ScramSha256,
        "SCRAM-SHA-512" => ScramMechanism.ScramSha512,
        _ => throw new CliException($"--mechanism: {name} is not SCRAM-SHA-256 or SCRAM-SHA-512"),
    };

    private static async Task AlterAsync(IAdminClient admin, UserScramCredentialAlteration alteration)
    {
        try
        {
            await admin.AlterUserScramCredentialsAsync([alteration]);
        }
        catch (AlterUserScramCredentialsException e)
        {
            throw new CliException(string.Join("; ", e.Results.Where(r => r.Error.IsError).Select(r => $"{r.User}: {r.Error.Reason}")));
        }
    }
}
