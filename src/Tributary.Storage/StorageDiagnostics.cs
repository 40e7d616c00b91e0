namespace Tributary.Storage;

/// <summary>
/// The one sink for storage failures that happen where no caller can be told: the flusher's syncs, retention,
/// producer-state snapshots, aborted-transaction index upkeep and high-watermark subscribers. Each is still handled
/// where it happens (a failed sync fails its waiting appends and turns the log read-only; retention goes on with the
/// other logs); this only makes sure it is seen. The host logs what it is told.
/// </summary>
public sealed class StorageDiagnostics
{
    /// <summary>Raised on the thread that met the failure; a subscriber's own failure is ignored.</summary>
    public event Action<StorageProblem>? Problem;

    internal void Report(string operation, string where, Exception error)
    {
        try
        {
            Problem?.Invoke(new StorageProblem(operation, where, error));
        }
        catch (Exception)
        {
            // Reporting must never become a second failure in the flusher or retention threads.
        }
    }
}

/// <param name="Operation">What was being done ("fsync", "retention", ...).</param>
/// <param name="Where">The partition directory (or data directory) it was done in.</param>
public sealed record StorageProblem(string Operation, string Where, Exception Error);
