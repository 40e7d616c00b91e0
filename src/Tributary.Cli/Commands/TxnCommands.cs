using System.CommandLine;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary txn list | describe ID</c> and <c>tributary producer list TOPIC</c>: transactions and idempotent
/// producers as the brokers see them. librdkafka has no admin calls for ListTransactions, DescribeTransactions or
/// DescribeProducers, so these go over a plain socket to each broker (list: every broker; describe: the transaction
/// coordinator; producers: each partition's leader) and work against Apache Kafka too.
/// </summary>
public static class TxnCommands
{
    public static Command Create() => new Command("txn", "List and describe transactions") { ListCommand(), DescribeCommand() }.WithClientOptions();

    public static Command CreateProducer() => new Command("producer", "Show the idempotent and transactional producers of a topic") { ProducerListCommand() }.WithClientOptions();

    private static Command ListCommand()
    {
        var command = new Command("list", "List transactional ids with state, producer id and epoch, age and partitions");
        command.Aliases.Add("ls");
        command.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            var table = Terminal.NewTable("TRANSACTIONAL ID", "STATE", "#PRODUCER ID", "#EPOCH", "#TIMEOUT MS", "AGE", "PARTITIONS");
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var broker in ClientOptions.Metadata(admin).Brokers.OrderBy(b => b.BrokerId))
            {
                var listed = await SendAsync<ListTransactionsResponse>(broker.Host, broker.Port, new ListTransactionsRequest(), 0);
                if (listed.ErrorCode != 0) throw new CliException($"ListTransactions on broker {broker.BrokerId} failed: {(ErrorCode)listed.ErrorCode}");
                if (listed.TransactionStates.Count == 0) continue;
                var described = await SendAsync<DescribeTransactionsResponse>(broker.Host, broker.Port,
                    new DescribeTransactionsRequest { TransactionalIds = [.. listed.TransactionStates.Select(t => t.TransactionalId)] }, 0);
                foreach (var t in described.TransactionStates.OrderBy(t => t.TransactionalId, StringComparer.Ordinal))
                    table.AddText(t.TransactionalId, t.TransactionState, t.ProducerId.ToString(), t.ProducerEpoch.ToString(), t.TransactionTimeoutMs.ToString(),
                        Age(now, t), Partitions(t));
            }
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    private static Command DescribeCommand()
    {
        var id = new Argument<string>("transactional-id") { Description = "Transactional id" };
        var command = new Command("describe", "Show one transactional id: state, producer id and epoch, timeout, age, partitions") { id };
        command.SetGuardedAction(async (parse, _) =>
        {
            var transactionalId = parse.GetValue(id)!;
            using var admin = ClientOptions.Admin(parse);
            var bootstrap = ClientOptions.Metadata(admin).Brokers.OrderBy(b => b.BrokerId).First();
            var coordinator = await SendAsync<FindCoordinatorResponse>(bootstrap.Host, bootstrap.Port,
                new FindCoordinatorRequest { Key = transactionalId, KeyType = 1 }, 3);
            if (coordinator.ErrorCode != 0) throw new CliException($"no transaction coordinator for '{transactionalId}': {(ErrorCode)coordinator.ErrorCode}");
            var described = await SendAsync<DescribeTransactionsResponse>(coordinator.Host, coordinator.Port,
                new DescribeTransactionsRequest { TransactionalIds = [transactionalId] }, 0);
            var t = described.TransactionStates.Single();
            if (t.ErrorCode != 0) throw new CliException($"transactional id '{transactionalId}': {(ErrorCode)t.ErrorCode}");
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            Terminal.Info($"Transactional id: {t.TransactionalId}");
            Terminal.Info($"State:            {t.TransactionState}");
            Terminal.Info($"Producer id:      {t.ProducerId}");
            Terminal.Info($"Producer epoch:   {t.ProducerEpoch}");
            Terminal.Info($"Timeout:          {t.TransactionTimeoutMs} ms");
            Terminal.Info($"Age:              {Age(now, t)}");
            var table = Terminal.NewTable("TOPIC", "#PARTITION");
            foreach (var topic in t.Topics.OrderBy(x => x.Topic, StringComparer.Ordinal))
                foreach (var p in topic.Partitions.Order()) table.AddText(topic.Topic, p.ToString());
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    private static Command ProducerListCommand()
    {
        var topicArg = new Argument<string>("topic") { Description = "Topic name" };
        var command = new Command("list", "Active producer ids per partition: epoch, last sequence, last write, open transaction") { topicArg };
        command.Aliases.Add("ls");
        command.SetGuardedAction(async (parse, _) =>
        {
            var topicName = parse.GetValue(topicArg)!;
            using var admin = ClientOptions.Admin(parse);
            var topic = ClientOptions.Topic(admin, topicName);
            var brokers = ClientOptions.Metadata(admin).Brokers.ToDictionary(b => b.BrokerId);
            var table = Terminal.NewTable("#PARTITION", "#PRODUCER ID", "#EPOCH", "#LAST SEQUENCE", "LAST WRITE", "OPEN TXN FROM OFFSET");
            foreach (var byLeader in topic.Partitions.GroupBy(p => p.Leader))
            {
                if (!brokers.TryGetValue(byLeader.Key, out var leader)) continue;
                var response = await SendAsync<DescribeProducersResponse>(leader.Host, leader.Port, new DescribeProducersRequest
                {
                    Topics = [new DescribeProducersRequest.TopicRequest { Name = topicName, PartitionIndexes = [.. byLeader.Select(p => p.PartitionId)] }],
                }, 0);
                foreach (var p in response.Topics.SelectMany(t => t.Partitions).OrderBy(p => p.PartitionIndex))
                {
                    if (p.ErrorCode != 0) Terminal.Warn($"partition {p.PartitionIndex}: {(ErrorCode)p.ErrorCode}");
                    foreach (var s in p.ActiveProducers)
                        table.AddText(p.PartitionIndex.ToString(), s.ProducerId.ToString(), s.ProducerEpoch.ToString(), s.LastSequence.ToString(),
                            s.LastTimestamp < 0 ? "" : DateTimeOffset.FromUnixTimeMilliseconds(s.LastTimestamp).ToString("u"),
                            s.CurrentTxnStartOffset < 0 ? "" : s.CurrentTxnStartOffset.ToString());
                }
            }
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    /// <summary>How long the open transaction has run; blank once it ended (the broker still reports when it began, as Kafka does).</summary>
    private static string Age(long now, DescribeTransactionsResponse.TransactionStateData t) =>
        t.TransactionStartTimeMs < 0 || t.TransactionState is not ("Ongoing" or "PrepareCommit" or "PrepareAbort" or "PrepareEpochFence")
            ? ""
            : TimeSpan.FromMilliseconds(Math.Max(0, now - t.TransactionStartTimeMs)).ToString(@"d\.hh\:mm\:ss");

    private static string Partitions(DescribeTransactionsResponse.TransactionStateData t) =>
        string.Join(",", t.Topics.SelectMany(x => x.Partitions.Order().Select(p => $"{x.Topic}-{p}")));

    private static Task<TResponse> SendAsync<TResponse>(string host, int port, IKafkaRequest request, short version)
        where TResponse : IKafkaResponse, new() => RawRequests.SendAsync<TResponse>(host, port, request, version);
}
