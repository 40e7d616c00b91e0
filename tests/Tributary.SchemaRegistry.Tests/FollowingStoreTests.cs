using Tributary.Coordination;
using Tributary.SchemaRegistry.Storage;
using Tributary.Storage;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// A store that follows a replica of <c>_schemas</c>-0 (<see cref="SchemaStore.OpenFollowing"/>), over a real partition
/// log: it applies only what is committed, catches up as the committed end moves, takes writes only with its writer
/// loaded, and rebuilds its state when the replica loses records it applied (an unclean election).
/// </summary>
public sealed class FollowingStoreTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-sr-follow-" + Guid.NewGuid().ToString("N"));
    private readonly PartitionLog _log;

    public FollowingStoreTests() => _log = PartitionLog.Open(_dir, new LogConfig(), TimeProvider.System);

    private static SchemaRequest Avro(string schema) => new(schema, "AVRO", [], null, null);

    private static string Record(string name) => $$"""{"type":"record","name":"{{name}}","fields":[{"name":"a","type":"int"}]}""";

    /// <summary>A store over the log that writes it (its durable end is what is committed), writer loaded.</summary>
    private async Task<SchemaStore> WriterAsync()
    {
        var store = SchemaStore.OpenFollowing(new SchemaLogSource(() => _log, log => log.HighWatermark), new PartitionCoordinatorLog(() => null, () => _log));
        Assert.Equal(ShardStatus.Loaded, await store.Writer.Load(0));
        return store;
    }

    [Fact]
    public async Task A_follower_applies_only_what_is_committed_and_catches_up_as_that_moves()
    {
        await using var writer = await WriterAsync();
        var ids = new List<int>();
        foreach (var name in new[] { "A", "B", "C" })
            ids.Add((await writer.RegisterAsync(name.ToLowerInvariant() + "-value", Avro(Record(name)), false)).Id);
        Assert.Equal([1, 2, 3], ids);
        Assert.Equal(3, writer.AppliedEnd);

        long committed = -1; // -1: the leader's high watermark not heard yet
        await using var follower = SchemaStore.OpenFollowing(new SchemaLogSource(() => _log, _ => Interlocked.Read(ref committed) is >= 0 and var c ? c : null),
            new PartitionCoordinatorLog(() => null, () => _log));
        // A follower that has not heard its leader's high watermark applies nothing, and says so.
        Assert.False(follower.IsCurrent);
        Assert.True(follower.IsCatchingUp);
        Assert.Empty(follower.Subjects(deleted: true));

        Interlocked.Exchange(ref committed, 1);
        follower.LogChanged();
        Assert.True(await follower.WaitAppliedAsync(1, Timeout));
        Assert.True(follower.IsCurrent);
        Assert.Equal(["a-value"], follower.Subjects(deleted: true));
        Assert.False(follower.TryGetById(2, out _), "a record above the committed end was applied");
        Assert.True(follower.IsCatchingUp, "the replica holds records the state has not applied");

        Interlocked.Exchange(ref committed, _log.HighWatermark);
        follower.LogChanged();
        Assert.True(await follower.WaitAppliedAsync(3, Timeout));
        Assert.Equal(writer.Subjects(deleted: true), follower.Subjects(deleted: true));
        Assert.Equal(3, follower.MaxId);
        Assert.False(follower.IsCatchingUp);

        // Its writer is not loaded (the leader's host loads it): it takes no writes, and the log is unchanged.
        var refused = await Assert.ThrowsAsync<RegistryException>(() => follower.RegisterAsync("d-value", Avro(Record("D")), false));
        Assert.Equal(50001, refused.ErrorCode);
        Assert.Equal(3, _log.LogEndOffset);
    }

    [Fact]
    public async Task A_write_waits_until_its_record_is_committed_and_applied()
    {
        long committed = 0;
        await using var writer = SchemaStore.OpenFollowing(new SchemaLogSource(() => _log, _ => Interlocked.Read(ref committed)),
            new PartitionCoordinatorLog(() => null, () => _log));
        Assert.Equal(ShardStatus.Loaded, await writer.Writer.Load(0));
        var registering = writer.RegisterAsync("a-value", Avro(Record("A")), false);
        await Eventually.TrueAsync(() => _log.HighWatermark == 1, Timeout, "the registration's record is durable", () => _log.HighWatermark);
        Assert.False(registering.IsCompleted, "a write answered before its record was committed");
        Assert.False(writer.TryGetById(1, out _));

        Interlocked.Exchange(ref committed, 1);
        writer.LogChanged();
        Assert.Equal(1, (await registering.WaitAsync(Timeout)).Id);
        Assert.True(writer.TryGetById(1, out _));
    }

    [Fact]
    public async Task A_replica_that_lost_applied_records_is_rebuilt_from_its_log_start()
    {
        await using (var writer = await WriterAsync())
        {
            foreach (var name in new[] { "A", "B", "C" })
                await writer.RegisterAsync(name.ToLowerInvariant() + "-value", Avro(Record(name)), false);
        }
        await using var follower = SchemaStore.OpenFollowing(new SchemaLogSource(() => _log, log => log.HighWatermark),
            new PartitionCoordinatorLog(() => null, () => _log));
        Assert.Equal(3, follower.MaxId);

        // An unclean election: the replica's last two records are replaced by a new leader's, under a new epoch, and the
        // log grows past where it was before the follower looks again.
        _log.TruncateTo(1);
        _log.LeaderEpoch = 1;
        await using (var usurper = await WriterAsync())
        {
            foreach (var name in new[] { "X", "Y", "Z" })
                await usurper.RegisterAsync(name.ToLowerInvariant() + "-value", Avro(Record(name)), false);
            Assert.Equal(4, usurper.MaxId);
        }
        follower.LogChanged();
        await Eventually.TrueAsync(() => follower.Subjects(deleted: true).SequenceEqual(["a-value", "x-value", "y-value", "z-value"]), Timeout,
            "the follower's state is the replica's new history", () => string.Join(",", follower.Subjects(deleted: true)));
        Assert.Equal(4, follower.MaxId);
        Assert.Contains("\"X\"", follower.GetById(2).Schema, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _log.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
