using System.CommandLine;
using System.Globalization;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Protocol.Messages;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary quota set|describe</c>: client quotas through AlterClientQuotas and DescribeClientQuotas (KIP-546), as
/// <c>kafka-configs --entity-type users|clients|ips</c> manages them. librdkafka has no call for these, so the requests go over
/// a plain socket to a broker (as <c>txn</c> does); <c>-X security.protocol</c> other than PLAINTEXT does not apply.
/// </summary>
public static class QuotaCommands
{
    public static Command Create() => new Command("quota", "Manage client quotas") { SetCommand(), DescribeCommand() }.WithClientOptions();

    private static readonly Option<string?> User = new("--user") { Description = "The user (a name, or <default> for every user without a quota of its own)" };
    private static readonly Option<string?> Client = new("--client-id") { Description = "The client id (a name, or <default>)" };
    private static readonly Option<string?> Ip = new("--ip") { Description = "A client address (or <default>), for connection_creation_rate; not with --user or --client-id" };

    private static Command SetCommand()
    {
        var add = new Option<string[]>("--add", "-a")
        {
            Description = "quota=value to set (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate; connection_creation_rate for --ip)",
        };
        var delete = new Option<string[]>("--delete", "-d") { Description = "quota to remove" };
        var command = new Command("set", "Set or remove quotas of a user, a client id, or both, or of an ip") { User, Client, Ip, add, delete };
        command.SetGuardedAction(async (parse, _) =>
        {
            var entry = new AlterClientQuotasRequest.EntryData { Entity = Entity(parse) };
            foreach (var assignment in parse.GetValue(add) ?? [])
            {
                var eq = assignment.IndexOf('=');
                if (eq <= 0 || !double.TryParse(assignment[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                    throw new CliException($"--add: expected quota=number, got '{assignment}'");
                entry.Ops.Add(new AlterClientQuotasRequest.OpData { Key = assignment[..eq], Value = value });
            }
            foreach (var key in parse.GetValue(delete) ?? []) entry.Ops.Add(new AlterClientQuotasRequest.OpData { Key = key, Remove = true });
            if (entry.Ops.Count == 0) throw new CliException("nothing to change: give --add quota=value or --delete quota");
            var (host, port) = Broker(parse);
            var response = await RawRequests.SendAsync<AlterClientQuotasResponse>(host, port, new AlterClientQuotasRequest { Entries = [entry] }, 1);
            var result = response.Entries.Single();
            if (result.ErrorCode != 0) throw new CliException($"{(ErrorCode)result.ErrorCode}: {result.ErrorMessage}");
            Console.Out.WriteLine($"Quotas of {Describe(entry.Entity.Select(e => (e.EntityType, e.EntityName)))} changed.");
            return 0;
        });
        return command;
    }

    private static Command DescribeCommand()
    {
        var command = new Command("describe", "List quotas, of one user, client id or ip (or their defaults) when named") { User, Client, Ip };
        command.SetGuardedAction(async (parse, _) =>
        {
            var components = new List<DescribeClientQuotasRequest.ComponentData>();
            foreach (var (type, name) in new[] { ("user", parse.GetValue(User)), ("client-id", parse.GetValue(Client)), ("ip", parse.GetValue(Ip)) })
                if (name is not null)
                    components.Add(name == "<default>"
                        ? new DescribeClientQuotasRequest.ComponentData { EntityType = type, MatchType = 1 }
                        : new DescribeClientQuotasRequest.ComponentData { EntityType = type, MatchType = 0, Match = name });
            var (host, port) = Broker(parse);
            var response = await RawRequests.SendAsync<DescribeClientQuotasResponse>(host, port, new DescribeClientQuotasRequest { Components = components }, 1);
            if (response.ErrorCode != 0) throw new CliException($"{(ErrorCode)response.ErrorCode}: {response.ErrorMessage}");
            var table = Terminal.NewTable("ENTITY", "QUOTA", "#VALUE");
            foreach (var entry in response.Entries ?? [])
                foreach (var value in entry.Values)
                    table.AddText(Describe(entry.Entity.Select(e => (e.EntityType, e.EntityName))), value.Key, value.Value.ToString(CultureInfo.InvariantCulture));
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    private static List<AlterClientQuotasRequest.EntityData> Entity(ParseResult parse)
    {
        var entity = new List<AlterClientQuotasRequest.EntityData>();
        if (parse.GetValue(User) is { } user) entity.Add(new() { EntityType = "user", EntityName = user == "<default>" ? null : user });
        if (parse.GetValue(Client) is { } client) entity.Add(new() { EntityType = "client-id", EntityName = client == "<default>" ? null : client });
        if (parse.GetValue(Ip) is { } ip) entity.Add(new() { EntityType = "ip", EntityName = ip == "<default>" ? null : ip });
        if (entity.Count == 0) throw new CliException("name the entity: --user and/or --client-id, or --ip (<default> for the default)");
        return entity;
    }

    private static string Describe(IEnumerable<(string Type, string? Name)> entity) =>
        string.Join(", ", entity.Select(e => $"{e.Type} {e.Name ?? "<default>"}"));

    /// <summary>Any broker takes quota changes; the first of the bootstrap list is asked.</summary>
    private static (string Host, int Port) Broker(ParseResult parse)
    {
        using var admin = ClientOptions.Admin(parse);
        var broker = ClientOptions.Metadata(admin).Brokers.OrderBy(b => b.BrokerId).First();
        return (broker.Host, broker.Port);
    }
}
