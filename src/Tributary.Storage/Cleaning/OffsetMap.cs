using System.Buffers.Binary;
using System.Numerics;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// The cleaner's key map: key → offset of the last record with that key in the range being cleaned, in a fixed
/// memory budget (log.cleaner.dedupe.buffer.size). Like Kafka's SkimpyOffsetMap it stores a 128-bit hash of the
/// key, not the key: 24 bytes per slot whatever the key size, open addressing with linear probing, at most
/// <see cref="LoadFactor"/> of the slots used so probes stay short. When it is full the cleaner stops the pass
/// there and cleans the rest in a later pass.
///
/// A hash collision would make two keys one (the older one's records removed); with 128 bits and keys that are
/// not chosen to collide, the chance is negligible (the same trade Kafka makes with MD5).
/// </summary>
internal sealed class OffsetMap
{
    public const int BytesPerEntry = 24;
    public const double LoadFactor = 0.9;
    private const int InitialSlots = 1 << 16;
    // One array of 24-byte slots, so a probe costs one cache miss, not three. OffsetPlusOne is 0 in an empty slot
    // (the array comes zeroed; no fill pass). The array starts small and doubles up to the budget: a log with few
    // distinct keys then probes a table that fits in cache, not one sized for every record of the pass.
    private Slot[] _slots = [];
    private int _maxSlots;
    private int _growAt;
    // The power-of-two tables this map has used, kept for the next pass (Reset) while they fit in the retain limit
    // (the dedupe budget): the cleaner then allocates its usual tables once, not every pass; each would be a
    // large-object allocation, and enough of them force full collections that pause the whole broker. A table cut
    // to the budget (not a power of two) is allocated when needed and not kept, so what stays is bounded.
    private readonly Dictionary<int, Slot[]> _tables = [];
    private readonly long _retainLimit;

    private struct Slot
    {
        public ulong Low;
        public ulong High;
        public long OffsetPlusOne;
    }

    /// <param name="slots">The most slots the budget allows.</param>
    /// <param name="retainBytes">How much of its tables the map may keep between passes; by default its budget.</param>
    public OffsetMap(int slots, long retainBytes = -1)
    {
        _retainLimit = retainBytes >= 0 ? retainBytes : (long)Math.Max(slots, 16) * BytesPerEntry;
        Reset(slots);
    }

    /// <summary>Bytes of tables kept for later passes (never more than the retain limit).</summary>
    internal long RetainedBytes { get; private set; }

    /// <summary>Empties the map for a new pass with a new budget of <paramref name="slots"/>, reusing its tables.</summary>
    public void Reset(int slots)
    {
        _maxSlots = Math.Max(slots, 16);
        _slots = Table(Math.Min(_maxSlots, InitialSlots));
        _growAt = GrowThreshold(_slots.Length);
        Capacity = (int)(_maxSlots * LoadFactor);
        Count = 0;
        LatestOffset = -1;
    }

    /// <summary>An empty table of <paramref name="length"/> slots: a kept one, cleared, or a new one.</summary>
    private Slot[] Table(int length)
    {
        if (_tables.TryGetValue(length, out var table))
        {
            Array.Clear(table);
            return table;
        }

        table = new Slot[length];
        long bytes = (long)length * BytesPerEntry;
        if (BitOperations.IsPow2(length) && RetainedBytes + bytes <= _retainLimit)
        {
            _tables[length] = table;
            RetainedBytes += bytes;
        }

        return table;
    }

    /// <summary>The slots a memory budget buys, or fewer when <paramref name="expectedKeys"/> needs fewer.</summary>
    public static int SlotsFor(long budgetBytes, long expectedKeys) =>
        (int)Math.Clamp(Math.Min(budgetBytes / BytesPerEntry, (long)(expectedKeys / LoadFactor) + 16), 16, Array.MaxLength);

    /// <summary>Keys the map accepts before it counts as full.</summary>
    public int Capacity { get; private set; }
    public int Count { get; private set; }
    public bool IsFull => Count >= Capacity;
    /// <summary>Largest offset put so far (-1 when empty).</summary>
    public long LatestOffset { get; private set; } = -1;

    // Below the budget the table doubles at half full: linear probing near 0.9 load means long probe runs, which the
    // largest table accepts only because the budget allows no more.
    private int GrowThreshold(int slots) => slots >= _maxSlots ? int.MaxValue : slots / 2;

    /// <summary>Records <paramref name="offset"/> as the latest for the key (offsets must be put in increasing order).</summary>
    public void Put(ReadOnlySpan<byte> key, long offset)
    {
        var (low, high) = Hash(key);
        ref var slot = ref _slots[Find(_slots, low, high)];
        if (slot.OffsetPlusOne == 0)
        {
            slot.Low = low;
            slot.High = high;
            if (++Count >= _growAt)
            {
                slot.OffsetPlusOne = offset + 1;
                Grow();
                LatestOffset = Math.Max(LatestOffset, offset);
                return;
            }
        }

        slot.OffsetPlusOne = offset + 1;
        LatestOffset = Math.Max(LatestOffset, offset);
    }

    private void Grow()
    {
        var old = _slots;
        var slots = Table((int)Math.Min((long)old.Length * 2, _maxSlots));
        foreach (var entry in old)
        {
            if (entry.OffsetPlusOne != 0)
            {
                slots[Find(slots, entry.Low, entry.High)] = entry;
            }
        }

        _slots = slots;
        _growAt = GrowThreshold(slots.Length);
    }

    /// <summary>Calls <paramref name="action"/> with the latest offset of every key.</summary>
    public void ForEachOffset(Action<long> action)
    {
        foreach (var slot in _slots)
        {
            if (slot.OffsetPlusOne != 0)
            {
                action(slot.OffsetPlusOne - 1);
            }
        }
    }

    /// <summary>The latest offset of the key, or -1 when the key is not in the map.</summary>
    public long Get(ReadOnlySpan<byte> key)
    {
        var (low, high) = Hash(key);
        var table = _slots;
        return table[Find(table, low, high)].OffsetPlusOne - 1;
    }

    private static int Find(Slot[] table, ulong low, ulong high)
    {
        int slots = table.Length;
        int slot = (int)((low >> 32) * (ulong)slots >> 32);
        while (table[slot].OffsetPlusOne != 0 && (table[slot].Low != low || table[slot].High != high))
        {
            slot = slot + 1 == slots ? 0 : slot + 1;
        }

        return slot;
    }

    /// <summary>Two independent 64-bit multiply-rotate lanes over 8-byte words, finished with a full avalanche.</summary>
    internal static (ulong Low, ulong High) Hash(ReadOnlySpan<byte> key)
    {
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL, P3 = 0x165667B19E3779F9UL, P4 = 0x85EBCA77C2B2AE63UL;
        ulong a = P1 ^ (ulong)key.Length, b = P3 + (ulong)key.Length;
        int i = 0;
        for (; i + 8 <= key.Length; i += 8)
        {
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(key[i..]);
            a = BitOperations.RotateLeft(a ^ (word * P2), 31) * P1;
            b = BitOperations.RotateLeft(b ^ (word * P4), 27) * P3;
        }

        ulong tail = 0;
        for (int shift = 0; i < key.Length; i++, shift += 8)
        {
            tail |= (ulong)key[i] << shift;
        }

        a = BitOperations.RotateLeft(a ^ (tail * P2), 31) * P1;
        b = BitOperations.RotateLeft(b ^ (tail * P4), 27) * P3;
        return (Avalanche(a ^ (b >> 29)), Avalanche(b ^ (a >> 31) ^ P4));
    }

    private static ulong Avalanche(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }
}
