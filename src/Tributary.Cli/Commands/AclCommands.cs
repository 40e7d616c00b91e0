using System.CommandLine;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Authorizer = Tributary.Broker.Security.Authorizer;
using KafkaOperation = Tributary.Broker.Security.AclOperation;
using KafkaPatternType = Tributary.Broker.Security.AclPatternType;
using Names = Tributary.Broker.Security.AclBinding.Names;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary acl create|list|delete</c>: Kafka's ACLs through the admin API (CreateAcls, DescribeAcls, DeleteAcls),
/// with kafka-acls' flags. Works against any Kafka-compatible cluster with an authorizer.
/// </summary>
public static class AclCommands
{
    /// <summary>librdkafka's resource type codes are Kafka's; TRANSACTIONAL_ID (5) has no name in Confluent.Kafka's enum.</summary>
    private const ResourceType Cluster = (ResourceType)4, TransactionalId = (ResourceType)5;

    private sealed class ResourceOptions
    {
        public Option<string[]> Topics { get; } = new("--topic") { Description = "Topic name (repeatable; * for every topic)" };
        public Option<string[]> Groups { get; } = new("--group") { Description = "Consumer group id (repeatable; * for every group)" };
        public Option<bool> Cluster { get; } = new("--cluster") { Description = "The cluster resource (kafka-cluster)" };
        public Option<string[]> TransactionalIds { get; } = new("--transactional-id") { Description = "Transactional id (repeatable; * for every id)" };
        public Option<string> PatternType { get; }

        public ResourceOptions(string defaultPattern, string patternHelp) =>
            PatternType = new Option<string>("--resource-pattern-type") { Description = patternHelp, DefaultValueFactory = _ => defaultPattern };

        public void AddTo(Command command)
        {
            command.Options.Add(Topics);
            command.Options.Add(Groups);
            command.Options.Add(Cluster);
            command.Options.Add(TransactionalIds);
            command.Options.Add(PatternType);
        }

        public List<(ResourceType Type, string Name)> Resources(ParseResult parse)
        {
            var list = new List<(ResourceType, string)>();
            list.AddRange((parse.GetValue(Topics) ?? []).Select(t => (ResourceType.Topic, t)));
            list.AddRange((parse.GetValue(Groups) ?? []).Select(g => (ResourceType.Group, g)));
            if (parse.GetValue(Cluster)) list.Add((AclCommands.Cluster, "kafka-cluster"));
            list.AddRange((parse.GetValue(TransactionalIds) ?? []).Select(t => (TransactionalId, t)));
            return list;
        }

        public ResourcePatternType Pattern(ParseResult parse) =>
            Names.TryParse<KafkaPatternType>(parse.GetValue(PatternType) ?? "", out var value) && value != KafkaPatternType.Unknown
                ? (ResourcePatternType)(int)value
                : throw new CliException($"--resource-pattern-type: expected literal, prefixed, match or any, got '{parse.GetValue(PatternType)}'");
    }

    public static Command Create()
    {
        var acl = new Command("acl", "Create, list and delete ACLs (as kafka-acls)") { CreateCommand(), ListCommand(), DeleteCommand() };
        return acl.WithClientOptions();
    }

    private static Option<string[]> OperationOption() =>
        new("--operation") { Description = "Operation (repeatable): All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite" };

    private static Command CreateCommand()
    {
        var allow = new Option<string[]>("--allow-principal") { Description = "Principal to allow, e.g. User:alice (repeatable)" };
        var deny = new Option<string[]>("--deny-principal") { Description = "Principal to deny (repeatable); DENY wins over ALLOW" };
        var operations = OperationOption();
        var host = new Option<string>("--host") { Description = "Client IP address the ACLs apply to", DefaultValueFactory = _ => "*" };
        var resources = new ResourceOptions("literal", "literal or prefixed (the name is a prefix of the resources it covers)");
        var command = new Command("create", "Add ACLs: every principal x operation x resource given") { allow, deny, operations, host };
        resources.AddTo(command);
        command.Aliases.Add("add");
        command.SetGuardedAction(async (parse, _) =>
        {
            var targets = resources.Resources(parse);
            var principals = (parse.GetValue(allow) ?? []).Select(p => (p, AclPermissionType.Allow))
                .Concat((parse.GetValue(deny) ?? []).Select(p => (p, AclPermissionType.Deny))).ToList();
            var ops = Operations(parse.GetValue(operations), required: true);
            if (targets.Count == 0) throw new CliException("give a resource: --topic, --group, --cluster or --transactional-id");
            if (principals.Count == 0) throw new CliException("give --allow-principal or --deny-principal");
            var pattern = resources.Pattern(parse);
            if (pattern is not (ResourcePatternType.Literal or ResourcePatternType.Prefixed))
                throw new CliException("--resource-pattern-type: ACLs are created literal or prefixed");
            foreach (var type in targets.Select(t => t.Type).Distinct()) RefuseUnsupported(type, ops);
            var bindings = (from t in targets
                            from p in principals
                            from op in ops
                            select new AclBinding
                            {
                                Pattern = new ResourcePattern { Type = t.Type, Name = t.Name, ResourcePatternType = pattern },
                                Entry = new AccessControlEntry { Principal = p.Item1, Host = parse.GetValue(host) ?? "*", Operation = op, PermissionType = p.Item2 },
                            }).ToList();
            using var admin = ClientOptions.Admin(parse);
            await admin.CreateAclsAsync(bindings, new CreateAclsOptions { RequestTimeout = ClientOptions.Timeout });
            Print(bindings);
            Terminal.Success($"created {bindings.Count} ACL(s)");
            return 0;
        });
        return command;
    }

    private static Command ListCommand()
    {
        var principal = new Option<string>("--principal") { Description = "Only ACLs of this principal" };
        var resources = new ResourceOptions("any", "any (default), match (every ACL that applies to the named resource), literal or prefixed");
        var command = new Command("list", "List ACLs, of the resources given or all") { principal };
        resources.AddTo(command);
        command.Aliases.Add("ls");
        command.SetGuardedAction(async (parse, _) =>
        {
            var pattern = resources.Pattern(parse);
            var targets = resources.Resources(parse);
            var filters = targets.Count == 0
                ? [Filter(ResourceType.Any, null, pattern, parse.GetValue(principal), null, AclOperation.Any, AclPermissionType.Any)]
                : targets.Select(t => Filter(t.Type, t.Name, pattern, parse.GetValue(principal), null, AclOperation.Any, AclPermissionType.Any)).ToList();
            using var admin = ClientOptions.Admin(parse);
            var found = new List<AclBinding>();
            foreach (var filter in filters)
                found.AddRange((await admin.DescribeAclsAsync(filter, new DescribeAclsOptions { RequestTimeout = ClientOptions.Timeout })).AclBindings);
            Print(found);
            return 0;
        });
        return command;
    }

    private static Command DeleteCommand()
    {
        var allow = new Option<string[]>("--allow-principal") { Description = "Remove ALLOW ACLs of this principal (repeatable)" };
        var deny = new Option<string[]>("--deny-principal") { Description = "Remove DENY ACLs of this principal (repeatable)" };
        var operations = OperationOption();
        var host = new Option<string>("--host") { Description = "Only ACLs for this host" };
        var resources = new ResourceOptions("literal", "literal (default), prefixed, match or any");
        var command = new Command("delete", "Remove the ACLs matching: of the resources given, and the principals and operations if given")
        {
            allow, deny, operations, host,
        };
        resources.AddTo(command);
        command.Aliases.Add("rm");
        command.SetGuardedAction(async (parse, _) =>
        {
            var targets = resources.Resources(parse);
            if (targets.Count == 0) throw new CliException("give a resource: --topic, --group, --cluster or --transactional-id");
            var pattern = resources.Pattern(parse);
            var ops = Operations(parse.GetValue(operations), required: false);
            var principals = (parse.GetValue(allow) ?? []).Select(p => ((string?)p, AclPermissionType.Allow))
                .Concat((parse.GetValue(deny) ?? []).Select(p => ((string?)p, AclPermissionType.Deny))).ToList();
            if (principals.Count == 0) principals.Add((null, AclPermissionType.Any));
            var filters = (from t in targets
                           from p in principals
                           from op in ops
                           select Filter(t.Type, t.Name, pattern, p.Item1, parse.GetValue(host), op, p.Item2)).ToList();
            using var admin = ClientOptions.Admin(parse);
            var results = await admin.DeleteAclsAsync(filters, new DeleteAclsOptions { RequestTimeout = ClientOptions.Timeout });
            var removed = results.SelectMany(r => r.AclBindings).ToList();
            Print(removed);
            Terminal.Success($"deleted {removed.Count} ACL(s)");
            return 0;
        });
        return command;
    }

    private static List<AclOperation> Operations(string[]? given, bool required)
    {
        if (given is not { Length: > 0 })
            return required ? throw new CliException("give --operation (e.g. --operation Read)") : [AclOperation.Any];
        return [.. given.Select(o => Names.TryParse<KafkaOperation>(o, out var op) && op is not (KafkaOperation.Unknown or KafkaOperation.Any)
            ? (AclOperation)(int)op
            : throw new CliException($"--operation: unknown operation '{o}'"))];
    }

    /// <summary>
    /// kafka-acls' check (brokers store any operation on any resource type, one that never applies included): only the
    /// operations the type has (Kafka's AclEntry.supportedOperations) and ALL.
    /// </summary>
    private static void RefuseUnsupported(ResourceType type, List<AclOperation> ops)
    {
        var kafkaType = (Tributary.Broker.Security.AclResourceType)(int)type;
        List<KafkaOperation> valid = [.. Authorizer.SupportedOperations(kafkaType), KafkaOperation.All];
        if (ops.Any(op => !valid.Contains((KafkaOperation)(int)op)))
            throw new CliException($"ResourceType {Names.Of(kafkaType)} only supports operations [{string.Join(", ", valid.Select(Names.Of))}]");
    }

    private static AclBindingFilter Filter(ResourceType type, string? name, ResourcePatternType pattern, string? principal, string? host, AclOperation op,
        AclPermissionType permission) => new()
        {
            PatternFilter = new ResourcePatternFilter { Type = type, Name = name, ResourcePatternType = pattern },
            EntryFilter = new AccessControlEntryFilter { Principal = principal, Host = host, Operation = op, PermissionType = permission },
        };

    private static void Print(IEnumerable<AclBinding> bindings)
    {
        var table = Terminal.NewTable("RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION");
        foreach (var b in bindings.OrderBy(b => b.Pattern.Type).ThenBy(b => b.Pattern.Name, StringComparer.Ordinal).ThenBy(b => b.Entry.Principal, StringComparer.Ordinal))
        {
            table.AddText(Names.Of((Tributary.Broker.Security.AclResourceType)(int)b.Pattern.Type), b.Pattern.Name,
                Names.Of((KafkaPatternType)(int)b.Pattern.ResourcePatternType), b.Entry.Principal, b.Entry.Host,
                Names.Of((KafkaOperation)(int)b.Entry.Operation), Names.Of((Tributary.Broker.Security.AclPermission)(int)b.Entry.PermissionType));
        }
        Terminal.Write(table);
    }
}
