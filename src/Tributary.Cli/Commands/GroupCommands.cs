using System.CommandLine;
using System.Globalization;
using System.Xml;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary group …</c>: list, describe (members, assignments, committed offsets and lag), delete, and seek —
/// rewind or advance a group's committed offsets, refused while the group has active members (as
/// kafka-consumer-groups --reset-offsets does). Everything goes through Kafka's admin and consumer APIs, so it works
/// against any Kafka-compatible cluster.
/// </summary>
public static class GroupCommands
{
    public static Command Create()
    {
        var group = new Command("group", "List, describe, delete consumer groups and move their committed offsets")
        {
            ListCommand(), DescribeCommand(), DeleteCommand(), SeekCommand(),
        };
        return group.WithClientOptions();
    }

    private static Command ListCommand()
    {
        var command = new Command("list", "List consumer groups");
        command.Aliases.Add("ls");
        command.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            var result = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { RequestTimeout = ClientOptions.Timeout });
            var table = Terminal.NewTable("GROUP", "STATE", "TYPE");
            foreach (var g in result.Valid.OrderBy(g => g.GroupId, StringComparer.Ordinal))
                table.AddText(g.GroupId, g.State.ToString(), g.Type.ToString());
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    private static Command DescribeCommand()
    {
        var name = new Argument<string>("group") { Description = "Group id" };
        var command = new Command("describe", "Show a group's members, assignments, committed offsets, log end offsets and lag") { name };
        command.SetGuardedAction(async (parse, _) =>
        {
            var groupId = parse.GetValue(name)!;
            using var admin = ClientOptions.Admin(parse);
            var description = await Describe(admin, groupId);
            var committed = await Committed(admin, groupId);
            using var consumer = new ConsumerBuilder<Ignore, Ignore>(ClientOptions.ConsumerConfig(parse)).SetLogHandler(ClientOptions.Log).Build();

            var owners = new Dictionary<TopicPartition, MemberDescription>();
            foreach (var m in description.Members)
                foreach (var tp in m.Assignment?.TopicPartitions ?? [])
                    owners[tp] = m;
            var partitions = committed.Keys.Union(owners.Keys)
                .OrderBy(tp => tp.Topic, StringComparer.Ordinal).ThenBy(tp => tp.Partition.Value).ToList();

            Terminal.Heading($"{groupId}: {description.State}, {description.Members.Count} member(s)"
                + (string.IsNullOrEmpty(description.PartitionAssignor) ? "" : $", assignor {description.PartitionAssignor}"));
            if (description.Members.Count > 0)
            {
                var members = Terminal.NewTable("MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "#PARTITIONS", "ASSIGNMENT");
                foreach (var m in description.Members.OrderBy(m => m.ConsumerId, StringComparer.Ordinal))
                {
                    var assigned = m.Assignment?.TopicPartitions ?? [];
                    members.AddText(m.ConsumerId, m.GroupInstanceId ?? "", m.ClientId, m.Host, assigned.Count.ToString(CultureInfo.InvariantCulture),
                        string.Join(" ", assigned.GroupBy(tp => tp.Topic).Select(t => $"{t.Key}:{string.Join(",", t.Select(tp => tp.Partition.Value).Order())}")));
                }
                Terminal.Write(members);
            }

            var table = Terminal.NewTable("TOPIC", "#PARTITION", "#COMMITTED", "#LOG-END", "#LAG", "MEMBER-ID");
            long totalLag = 0;
            foreach (var tp in partitions)
            {
                var end = consumer.QueryWatermarkOffsets(tp, ClientOptions.Timeout).High.Value;
                var offset = committed.TryGetValue(tp, out var c) ? c : Offset.Unset;
                long? lag = offset.IsSpecial ? null : Math.Max(0, end - offset.Value);
                totalLag += lag ?? 0;
                table.AddText(tp.Topic, tp.Partition.Value.ToString(CultureInfo.InvariantCulture), offset.IsSpecial ? "-" : offset.Value.ToString(CultureInfo.InvariantCulture),
                    end.ToString(CultureInfo.InvariantCulture), lag?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    owners.TryGetValue(tp, out var owner) ? owner.ConsumerId : "");
            }
            if (partitions.Count > 0) Terminal.Write(table);
            else Terminal.Note("no committed offsets and no assignments");
            Terminal.Info($"total lag: {totalLag}");
            return 0;
        });
        return command;
    }

    private static Command DeleteCommand()
    {
        var names = new Argument<string[]>("group") { Description = "Group id(s)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete groups that have no active members, with their committed offsets") { names };
        command.Aliases.Add("rm");
        command.SetGuardedAction(async (parse, _) =>
        {
            var groups = parse.GetValue(names)!;
            using var admin = ClientOptions.Admin(parse);
            try
            {
                await admin.DeleteGroupsAsync(groups, new DeleteGroupsOptions { RequestTimeout = ClientOptions.Timeout });
                foreach (var g in groups) Terminal.Success($"{g}: deleted");
                return 0;
            }
            catch (DeleteGroupsException e)
            {
                foreach (var r in e.Results)
                {
                    if (r.Error.IsError) Terminal.Error($"{r.Group}: {ErrorHandling.Describe(r.Error)}");
                    else Terminal.Success($"{r.Group}: deleted");
                }
                return ErrorHandling.Failure;
            }
        });
        return command;
    }

    private static Command SeekCommand()
    {
        var name = new Argument<string>("group") { Description = "Group id" };
        var topic = new Option<string>("--topic", "-t") { Description = "Topic whose offsets to move", Required = true };
        var partition = new Option<int[]>("--partition", "-p") { Description = "Partition (repeatable) [default: all]" };
        var earliest = new Option<bool>("--to-earliest") { Description = "To the log start offset" };
        var latest = new Option<bool>("--to-latest") { Description = "To the log end offset (skip everything)" };
        var toOffset = new Option<long?>("--to-offset") { Description = "To this offset (clamped to the log)" };
        var toDatetime = new Option<string?>("--to-datetime") { Description = "To the first record at or after this ISO-8601 time, e.g. 2026-11-26T10:00:00Z" };
        var byDuration = new Option<string?>("--by-duration") { Description = "To the first record at or after now plus this ISO-8601 duration, e.g. -PT1H" };
        var shiftBy = new Option<long?>("--shift-by") { Description = "Move the committed offset by N (negative rewinds)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show the plan without committing it" };
        var command = new Command("seek", "Move a group's committed offsets (refused while the group has active members)")
        {
            name, topic, partition, earliest, latest, toOffset, toDatetime, byDuration, shiftBy, dryRun,
        };
        command.Aliases.Add("reset-offsets");
        command.SetGuardedAction(async (parse, _) =>
        {
            var groupId = parse.GetValue(name)!;
            var topicName = parse.GetValue(topic)!;
            var chosen = new List<string>();
            if (parse.GetValue(earliest)) chosen.Add("--to-earliest");
            if (parse.GetValue(latest)) chosen.Add("--to-latest");
            if (parse.GetValue(toOffset) is not null) chosen.Add("--to-offset");
            if (parse.GetValue(toDatetime) is not null) chosen.Add("--to-datetime");
            if (parse.GetValue(byDuration) is not null) chosen.Add("--by-duration");
            if (parse.GetValue(shiftBy) is not null) chosen.Add("--shift-by");
            if (chosen.Count != 1)
                throw new CliException("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by");

            long? timestamp = null;
            if (parse.GetValue(toDatetime) is { } iso)
            {
                if (!DateTimeOffset.TryParse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                    throw new CliException($"--to-datetime: '{iso}' is not an ISO-8601 time");
                timestamp = at.ToUnixTimeMilliseconds();
            }
            if (parse.GetValue(byDuration) is { } duration)
            {
                TimeSpan span;
                try
                {
                    span = XmlConvert.ToTimeSpan(duration);
                }
                catch (FormatException)
                {
                    throw new CliException($"--by-duration: '{duration}' is not an ISO-8601 duration such as -PT1H or -P1DT2H");
                }
                timestamp = DateTimeOffset.UtcNow.Add(span).ToUnixTimeMilliseconds();
            }

            using var admin = ClientOptions.Admin(parse);
            var description = await Describe(admin, groupId);
            if (description.Members.Count > 0)
            {
                throw new CliException($"group '{groupId}' has {description.Members.Count} active member(s) ({description.State}); "
                    + "stop its consumers before moving its offsets");
            }
            var metadata = ClientOptions.Topic(admin, topicName);
            var partitions = parse.GetValue(partition) is { Length: > 0 } asked ? asked : [.. metadata.Partitions.Select(p => p.PartitionId).Order()];
            foreach (var p in partitions)
                if (metadata.Partitions.All(m => m.PartitionId != p)) throw new CliException($"topic '{topicName}' has no partition {p}");

            var committed = await Committed(admin, groupId);
            using var consumer = new ConsumerBuilder<Ignore, Ignore>(ClientOptions.ConsumerConfig(parse)).SetLogHandler(ClientOptions.Log).Build();
            var byTime = timestamp is { } ts
                ? consumer.OffsetsForTimes(partitions.Select(p => new TopicPartitionTimestamp(topicName, p, new Timestamp(ts, TimestampType.CreateTime))), ClientOptions.Timeout)
                    .ToDictionary(r => r.Partition.Value, r => r.Offset)
                : [];

            var plan = new List<(TopicPartition Partition, Offset Current, long Target)>();
            foreach (var p in partitions)
            {
                var tp = new TopicPartition(topicName, p);
                var marks = consumer.QueryWatermarkOffsets(tp, ClientOptions.Timeout);
                var current = committed.TryGetValue(tp, out var c) ? c : Offset.Unset;
                long target;
                if (parse.GetValue(earliest)) target = marks.Low.Value;
                else if (parse.GetValue(latest)) target = marks.High.Value;
                else if (parse.GetValue(toOffset) is { } n) target = n;
                else if (parse.GetValue(shiftBy) is { } shift) target = (current.IsSpecial ? marks.Low.Value : current.Value) + shift;
                else target = byTime.TryGetValue(p, out var o) && !o.IsSpecial ? o.Value : marks.High.Value; // nothing that late: the end
                target = Math.Clamp(target, marks.Low.Value, marks.High.Value);
                plan.Add((tp, current, target));
            }

            var table = Terminal.NewTable("TOPIC", "#PARTITION", "#CURRENT", "#NEW");
            foreach (var (tp, current, target) in plan)
                table.AddText(tp.Topic, tp.Partition.Value.ToString(CultureInfo.InvariantCulture),
                    current.IsSpecial ? "-" : current.Value.ToString(CultureInfo.InvariantCulture), target.ToString(CultureInfo.InvariantCulture));
            Terminal.Write(table);
            if (parse.GetValue(dryRun))
            {
                Terminal.Note("dry run: nothing committed");
                return 0;
            }
            var results = await admin.AlterConsumerGroupOffsetsAsync(
                [new ConsumerGroupTopicPartitionOffsets(groupId, [.. plan.Select(x => new TopicPartitionOffset(x.Partition, new Offset(x.Target)))])],
                new AlterConsumerGroupOffsetsOptions { RequestTimeout = ClientOptions.Timeout });
            var failed = results.SelectMany(r => r.Partitions).Where(p => p.Error.IsError).ToList();
            foreach (var f in failed) Terminal.Error($"{f.Topic}-{f.Partition.Value}: {ErrorHandling.Describe(f.Error)}");
            if (failed.Count > 0) return ErrorHandling.Failure;
            Terminal.Success($"{groupId}: {plan.Count} partition(s) of {topicName} moved");
            return 0;
        });
        return command;
    }

    private static async Task<ConsumerGroupDescription> Describe(IAdminClient admin, string groupId)
    {
        try
        {
            var result = await admin.DescribeConsumerGroupsAsync([groupId], new DescribeConsumerGroupsOptions { RequestTimeout = ClientOptions.Timeout });
            return result.ConsumerGroupDescriptions.Single();
        }
        catch (DescribeConsumerGroupsException e)
        {
            var description = e.Results.ConsumerGroupDescriptions.Single();
            if (description.Error.Code == ErrorCode.GroupIdNotFound) throw new CliException($"group '{groupId}' does not exist");
            throw new CliException($"group '{groupId}': {ErrorHandling.Describe(description.Error)}");
        }
    }

    private static async Task<Dictionary<TopicPartition, Offset>> Committed(IAdminClient admin, string groupId)
    {
        var results = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(groupId, null)],
            new ListConsumerGroupOffsetsOptions { RequestTimeout = ClientOptions.Timeout });
        return results.Single().Partitions.Where(p => !p.Offset.IsSpecial).ToDictionary(p => p.TopicPartition, p => p.Offset);
    }
}
