using System.Globalization;

namespace Tributary.Broker.Transactions;

/// <summary>
/// Hands out producer ids, unique for the life of the data directory. Ids are reserved in blocks of
/// <see cref="BlockSize"/>: the end of the current block is written to <c>producer-ids.checkpoint</c> (temp file,
/// fsync, rename) before any id of it is given out, so after a crash the next block starts past every id issued.
/// </summary>
public sealed class ProducerIdManager
{
    public const int BlockSize = 1000;
    private const string FileName = "producer-ids.checkpoint";
    private readonly object _lock = new();
    private readonly string _path;
    private long _next;
    private long _blockEnd;

    public ProducerIdManager(string dataDir)
    {
        _path = Path.Combine(dataDir, FileName);
        _next = File.Exists(_path) && long.TryParse(File.ReadAllText(_path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var end) ? end : 0;
        _blockEnd = _next;
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
