namespace Tributary.Storage;

/// <summary>
/// The producer-state side of the log (see <see cref="ProducerStateManager"/>): the hooks the append path calls and
/// what fetch, ListOffsets and DescribeProducers read — the last stable offset, aborted transactions, active producers.
/// </summary>
public sealed partial class PartitionLog
{
    // Replaced whole when the log is truncated (TruncateTo); readers take the reference once per call.
    private volatile ProducerStateManager _producers;

    /// <summary>
    /// The last stable offset: every offset below it is decided (not part of an open transaction, and any abort or
    /// commit marker of its transaction is below the high watermark). read_committed consumers read up to it.
    /// </summary>
    public long LastStableOffset => _producers.LastStableOffset(_state.HighWatermark);

    /// <summary>Aborted transactions overlapping [from, toExclusive), oldest first (for read_committed fetches).</summary>
    public IReadOnlyList<AbortedTxn> AbortedTransactions(long from, long toExclusive) => _producers.AbortedTransactions(from, toExclusive);

    /// <summary>The producers this partition remembers (DescribeProducers).</summary>
    public IReadOnlyList<ActiveProducer> ActiveProducers() => _producers.ActiveProducers();

    /// <summary>
    /// True when the producer's transaction under <paramref name="epoch"/> is open in this partition (a transactional
    /// batch written, no marker yet): the partition is already part of it, so the leader need not ask the transaction
    /// coordinator again (KIP-890 part 1).
    /// </summary>
    public bool HasOngoingTransaction(long producerId, short epoch) => _producers.HasOngoingTransaction(producerId, epoch);

    /// <summary>producer.id.expiration.ms for this partition.</summary>
    public long ProducerIdExpirationMs
    {
        get => _producers.ExpirationMs;
        set => _producers.ExpirationMs = value;
    }

    /// <summary>Forgets producers idle past <see cref="ProducerIdExpirationMs"/> now (also done during appends).</summary>
    public int ExpireProducers() => _producers.Expire(_time.GetUtcNow().ToUnixTimeMilliseconds());

    private ProducerStateManager.PendingAppend? PrepareProducerState(ReadOnlySpan<byte> batches, long now, bool logAppendTime, AppendOrigin origin,
        out AppendResult? duplicate)
    {
        var pending = _producers.Prepare(batches, now, origin, out var original);
        // A retried batch is answered as it was the first time, with the broker time it was stamped with.
        duplicate = original is { } d ? new AppendResult(d.FirstOffset, d.LastOffset, logAppendTime ? d.TimestampMs : -1, _logStartOffset) : null;
        return pending;
    }

    private void SnapshotProducerStateLocked()
    {
        try
        {
            _producers.TakeSnapshot(_logEndOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A missing snapshot only makes the next open replay more of the log. A full disk is no failure of the
            // directory (as for appends): it is reported and the directory stays online. Any other error is one, so the
            // directory goes offline (a standalone log only reports it).
            if (_logDir is null || LogDirectory.IsOutOfSpace(e)) _diagnostics?.Report("producer-state snapshot", _directory, e);
            else ReportIOFailure("producer-state snapshot", e);
        }
    }
}
