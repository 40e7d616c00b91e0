using System.Collections.Concurrent;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// What the clients saw during one run: every write the producers attempted, how each ended (acknowledged at a
/// partition and offset, or failed with an error), and the final read of every partition. Values are unique per run,
/// so a value names one write. The checker (<see cref="FaultChecker"/>) judges the broker on this alone.
/// </summary>
internal sealed class FaultHistory
{
    public readonly record struct Ack(int Partition, long Offset);

    public readonly record struct Read(long Offset, string Value);

    private readonly ConcurrentDictionary<string, int> _attempted = new();
    private readonly ConcurrentQueue<(string Value, Ack Ack)> _acked = new();
    private readonly ConcurrentDictionary<string, string> _failed = new();
    private readonly ConcurrentDictionary<int, List<Read>> _reads = new();

    /// <summary>The write of <paramref name="value"/> to <paramref name="partition"/> was handed to a producer.</summary>
    public void Attempted(string value, int partition) => _attempted[value] = partition;

    public void Acknowledged(string value, int partition, long offset) => _acked.Enqueue((value, new Ack(partition, offset)));

    /// <summary>The producer gave up on the write: it may or may not be in the log (an indeterminate write).</summary>
    public void Failed(string value, string error) => _failed[value] = error;

    public void ReadPartition(int partition, List<Read> records) => _reads[partition] = records;

    public IReadOnlyDictionary<string, int> Attempts => _attempted;

    public IReadOnlyCollection<(string Value, Ack Ack)> Acks => _acked;

    public IReadOnlyDictionary<string, string> Failures => _failed;

    public IReadOnlyDictionary<int, List<Read>> Reads => _reads;
}
