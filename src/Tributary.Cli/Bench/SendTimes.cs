namespace Tributary.Cli.Bench;

/// <summary>
/// Send timestamps of one partition's records in flight, oldest first. Thread-safe: the producing thread pushes,
/// the client's delivery thread pops. A send the client refuses is taken back from the newest end.
/// </summary>
public sealed class SendTimes
{
    private readonly Lock _lock = new();
    private long[] _items = new long[1024];
    private int _head;
    private int _count;

    public void Push(long timestamp)
    {
        lock (_lock)
        {
            if (_count == _items.Length)
            {
                var grown = new long[_items.Length * 2];
                for (var i = 0; i < _count; i++) grown[i] = _items[(_head + i) % _items.Length];
                _items = grown;
                _head = 0;
            }
            _items[(_head + _count) % _items.Length] = timestamp;
            _count++;
        }
    }

    public void TakeBackNewest()
    {
        lock (_lock) _count--;
    }

    public long PopOldest()
    {
        lock (_lock)
        {
            var value = _items[_head];
            _head = (_head + 1) % _items.Length;
            _count--;
            return value;
        }
    }
}
