using System.Globalization;

namespace Tributary.Broker.Transactions;

/// <summary>
/// Hands out producer ids, unique for the life of the data directory, or of the cluster. Ids are reserved in blocks
/// of <see cref="BlockSize"/>. A broker alone writes the end of the current block to <c>producer-ids.checkpoint</c>
/// (temp file, fsync, rename) before any id of it is given out, so after a crash the next block starts past every id
/// issued. In a cluster every broker hands out ids, so blocks come from the metadata store
/// (<see cref="Cluster.IMetadataStore.AllocateProducerIdsAsync"/>, a compare-and-swap on one counter), as Kafka's
/// controller allocates them (KIP-730): two brokers never give the same id to two producers, whose batches would
/// otherwise be taken for each other's retries and answered as duplicates without being written.
/// </summary>
public sealed class ProducerIdManager
{
    public const int BlockSize = 1000;
    private const string FileName = "producer-ids.checkpoint";
    private readonly object _lock = new();
    private readonly string _path;
    private readonly Func<int, long>? _allocateBlock;
    private long _next;
    private long _blockEnd;

    public ProducerIdManager(string dataDir)
    {
        _path = Path.Combine(dataDir, FileName);
        _next = File.Exists(_path) && long.TryParse(File.ReadAllText(_path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var end) ? end : 0;
        _blockEnd = _next;
    }

    /// <summary>A cluster's: each block is the one <paramref name="allocateBlock"/> (given the size) returns the start of.</summary>
    public ProducerIdManager(Func<int, long> allocateBlock)
    {
        _path = "";
        _allocateBlock = allocateBlock;
    }

    /// <summary>Makes sure no id at or below <paramref name="producerId"/> is handed out (ids found in the transaction log).</summary>
    public void Observe(long producerId)
    {
        lock (_lock)
        {
            if (producerId >= _next) _next = producerId + 1;
        }
    }

    public long Next()
    {
        lock (_lock)
        {
            while (_allocateBlock is not null && _next >= _blockEnd)
            {
                // Ids observed in the transaction log came from earlier blocks of the same counter, so they lie below
                // the new block; skipping to past them is only a precaution.
                var start = _allocateBlock(BlockSize);
                _blockEnd = start + BlockSize;
                _next = Math.Max(_next, start);
            }
            if (_next >= _blockEnd)
            {
                var end = _next + BlockSize;
                var temp = _path + ".tmp";
                using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
                {
                    file.Write(System.Text.Encoding.ASCII.GetBytes(end.ToString(CultureInfo.InvariantCulture)));
                    file.Flush(flushToDisk: true);
                }
                File.Move(temp, _path, overwrite: true);
                _blockEnd = end;
            }
            return _next++;
        }
    }
}
