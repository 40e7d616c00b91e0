using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// A `tributary serve` process is killed with SIGKILL while a transactional producer commits transactions of 30
/// records spread over 3 partitions, then restarted. Each transaction must be all-or-nothing for read_committed
/// readers, every transaction whose commit was acknowledged must be there, and the same transactional.id must be
/// able to carry on (its successor resolves whatever the kill left open).
/// </summary>
[Trait("Category", "Slow")]
public sealed class TransactionsKillTests(ITestOutputHelper output)
{
    private const string Topic = "txn-kill";
    private const int PerTxn = 30;

    [Fact]
    public async Task Kill_9_during_transactions_leaves_every_transaction_whole()
    {
        var cli = await ServeProcess.LocateCliAsync();
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-txnkill-" + Guid.NewGuid().ToString("N"));
        var port = ServeProcess.FreePort();
        var bootstrap = $"127.0.0.1:{port}";
        var acknowledged = new HashSet<string>();
        var random = new Random(42);
        try
        {
            for (var round = 0; round < 3; round++)
            {
                using var serve = await ServeProcess.StartAsync(cli, dataDir, port, output);
                if (round == 0)
                {
                    using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
                    await admin.CreateTopicsAsync([new TopicSpecification { Name = Topic, NumPartitions = 3, ReplicationFactor = 1 }]);
                }
                else
                {
                    Verify(bootstrap, acknowledged);
                }

                var killAfter = TimeSpan.FromMilliseconds(1500 + random.Next(1500));
                var killer = Task.Run(async () =>
                {
                    await Task.Delay(killAfter);
                    serve.Kill();
                });
                var producer = new ProducerBuilder<string, string>(new ProducerConfig
                {
                    BootstrapServers = bootstrap,
                    TransactionalId = "txn-kill",
                    TransactionTimeoutMs = 10_000,
                    LingerMs = 1,
                    MessageTimeoutMs = 5_000,
                    SocketTimeoutMs = 5_000,
                }).Build();
                try
                {
                    producer.InitTransactions(TimeSpan.FromSeconds(30));
                    for (var txn = 0; !killer.IsCompleted; txn++)
                    {
                        var tag = $"r{round}t{txn}";
                        producer.BeginTransaction();
                        for (var i = 0; i < PerTxn; i++) producer.Produce(Topic, new Message<string, string> { Key = $"{tag}-{i}", Value = tag });
                        producer.CommitTransaction(TimeSpan.FromSeconds(10));
                        acknowledged.Add(tag);
                    }
                }
                catch (KafkaException e)
                {
                    output.WriteLine($"round {round}: producer stopped by the kill: {e.Error.Reason}");
                }
                finally
                {
                    await killer;
                    producer.Dispose();
                }
                output.WriteLine($"round {round}: {acknowledged.Count} transactions acknowledged so far");
            }

            using var last = await ServeProcess.StartAsync(cli, dataDir, port, output);
            using (var successor = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, TransactionalId = "txn-kill" }).Build())
            {
                successor.InitTransactions(TimeSpan.FromSeconds(30));
                successor.BeginTransaction();
                for (var i = 0; i < PerTxn; i++) successor.Produce(Topic, new Message<string, string> { Key = $"final-{i}", Value = "final" });
                successor.CommitTransaction(TimeSpan.FromSeconds(30));
                acknowledged.Add("final");
            }
            Verify(bootstrap, acknowledged);
        }
        finally
        {
            try
            {
                Directory.Delete(dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>read_committed sees whole transactions only, including every acknowledged one.</summary>
    private void Verify(string bootstrap, HashSet<string> acknowledged)
    {
        // Wait until nothing is pending: the LSO reaches the high watermark once open transactions resolve.
        var values = TransactionsTests.ReadValues(bootstrap, Topic, 3, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(3));
        var byTag = values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        foreach (var (tag, count) in byTag) Assert.True(count == PerTxn, $"transaction {tag} is partial: {count} of {PerTxn} records");
        foreach (var tag in acknowledged) Assert.True(byTag.ContainsKey(tag), $"acknowledged transaction {tag} is missing");
        output.WriteLine($"verified {byTag.Count} whole transactions ({acknowledged.Count} acknowledged)");
    }
}
