using Tributary.Broker.Groups;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Tests;

/// <summary>
/// The records of <c>__consumer_offsets</c> (<see cref="OffsetsTopicRecords"/>) and <c>__transaction_state</c>
/// (<see cref="TransactionStateRecords"/>) are on users' disks: their bytes must never change. The expected bytes below
/// were captured from the codecs' hand-rolled implementation (before they used KafkaWriter and KafkaReader) and checked against the layouts in their doc
/// comments, one field per line.
/// </summary>
public sealed class CoordinatorRecordsCodecTests
{
    private static byte[] Hex(params string[] fields) => Convert.FromHexString(string.Concat(fields));

    private static readonly byte[] OffsetKeyBytes = Hex(
        "0001",                            // version 1
        "0007", "6772C3BC707065",          // group "grüppe" (UTF-8, 7 bytes)
        "0006", "6F7264657273",            // topic "orders"
        "00000007");                       // partition 7

    private static readonly CommittedOffset Offset = new(0x0102030405060708, 5, "meta✓", 1_700_000_000_123);

    private static readonly byte[] OffsetValueBytes = Hex(
        "0003",                            // version 3
        "0102030405060708",                // offset
        "00000005",                        // leader epoch
        "0007", "6D657461E29C93",          // metadata "meta✓"
        "0000018BCFE5687B");               // commit timestamp

    private static readonly byte[] GroupKeyBytes = Hex("0002", "0007", "6772C3BC707065");

    private static readonly StoredGroup Group = new("consumer", 4, "range", "m-1", 1_700_000_000_456,
    [
        new StoredMember("m-1", null, "client", "/10.0.0.1", 60000, 45000, [1, 2, 3], []),
        new StoredMember("m-2", "static-2", "c2", "/h", 300000, 10000, [], [0xff]),
    ]);

    private static readonly byte[] GroupValueBytes = Hex(
        "0003",                            // version 3
        "0008", "636F6E73756D6572",        // protocol type "consumer"
        "00000004",                        // generation
        "0005", "72616E6765",              // protocol "range"
        "0003", "6D2D31",                  // leader "m-1"
        "0000018BCFE569C8",                // state timestamp
        "00000002",                        // 2 members
        "0003", "6D2D31",                  //   member id "m-1"
        "FFFF",                            //   group instance id null
        "0006", "636C69656E74",            //   client id "client"
        "0009", "2F31302E302E302E31",      //   client host "/10.0.0.1"
        "0000EA60",                        //   rebalance timeout 60000
        "0000AFC8",                        //   session timeout 45000
        "00000003", "010203",              //   subscription
        "00000000",                        //   assignment (empty)
        "0003", "6D2D32",                  //   member id "m-2"
        "0008", "7374617469632D32",        //   group instance id "static-2"
        "0002", "6332",                    //   client id "c2"
        "0002", "2F68",                    //   client host "/h"
        "000493E0",                        //   rebalance timeout 300000
        "00002710",                        //   session timeout 10000
        "00000000",                        //   subscription (empty)
        "00000001", "FF");                 //   assignment

    private static readonly byte[] EmptyGroupValueBytes = Hex(
        "0003", "0000", "00000000", "FFFF", "FFFF", "FFFFFFFFFFFFFFFF", "00000000");

    private static readonly byte[] TxnKeyBytes = Hex("0000", "0005", "74782DC3BC"); // version 0, "tx-ü"

    private static TransactionMetadata Txn()
    {
        var m = new TransactionMetadata("tx-ü")
        {
            ProducerId = 0x1122334455667788,
            LastProducerId = -1,
            Epoch = 3,
            LastEpoch = -1,
            TimeoutMs = 60000,
            State = TransactionState.Ongoing,
            StartTimeMs = 1_700_000_000_000,
            LastUpdateMs = 1_700_000_000_999,
        };
        m.Partitions.Add(("b-topic", 2));
        m.Partitions.Add(("a-topic", 0));
        return m;
    }

    private static readonly byte[] TxnValueBytes = Hex(
        "0000",                            // version 0
        "1122334455667788",                // producer id
        "FFFFFFFFFFFFFFFF",                // last producer id
        "0003",                            // epoch
        "FFFF",                            // last epoch
        "0000EA60",                        // timeout ms
        "01",                              // state Ongoing
        "0000018BCFE56800",                // start time
        "0000018BCFE56BE7",                // last update
        "00000002",                        // 2 partitions (sorted)
        "0007", "612D746F706963", "00000000",
        "0007", "622D746F706963", "00000002",
        "00000000",                        // no groups (written empty since TxnOffsetCommit went to the group coordinator)
        "00000000");                       // no staged offsets (likewise)

    /// <summary>The same transaction as an older broker wrote it, when this coordinator kept the groups and staged offsets.</summary>
    private static readonly byte[] LegacyTxnValueBytes = Hex(
        "0000",                            // version 0
        "1122334455667788",                // producer id
        "FFFFFFFFFFFFFFFF",                // last producer id
        "0003",                            // epoch
        "FFFF",                            // last epoch
        "0000EA60",                        // timeout ms
        "01",                              // state Ongoing
        "0000018BCFE56800",                // start time
        "0000018BCFE56BE7",                // last update
        "00000002",                        // 2 partitions (sorted)
        "0007", "612D746F706963", "00000000",
        "0007", "622D746F706963", "00000002",
        "00000001",                        // 1 group
        "0002", "6731",
        "00000002",                        // 2 staged offsets
        "0002", "6731", "0007", "612D746F706963", "00000000", "000000000000002A", "00000007", "FFFF",
        "0002", "6731", "0007", "622D746F706963", "00000002", "000000000000002B", "FFFFFFFF", "0002", "6D64");

    private static readonly byte[] EmptyTxnValueBytes = Hex(
        "0000", "FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF", "FFFF", "FFFF", "00000000", "07", "FFFFFFFFFFFFFFFF",
        "0000000000000000", "00000000", "00000000", "00000000");

    [Fact]
    public void OffsetCommitKeyBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(OffsetKeyBytes, OffsetsTopicRecords.OffsetCommitKey("grüppe", "orders", 7));
        Assert.Equal(new OffsetsTopicRecords.OffsetKey("grüppe", "orders", 7), OffsetsTopicRecords.ReadKey(OffsetKeyBytes));
    }

    [Fact]
    public void OffsetCommitValueBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(OffsetValueBytes, OffsetsTopicRecords.OffsetCommitValue(Offset));
        Assert.Equal(Offset, OffsetsTopicRecords.ReadOffsetValue(OffsetValueBytes));
        var empty = new CommittedOffset(-1, -1, "", 0);
        var emptyBytes = Hex("0003", "FFFFFFFFFFFFFFFF", "FFFFFFFF", "0000", "0000000000000000");
        Assert.Equal(emptyBytes, OffsetsTopicRecords.OffsetCommitValue(empty));
        Assert.Equal(empty, OffsetsTopicRecords.ReadOffsetValue(emptyBytes));
    }

    [Fact]
    public void GroupMetadataKeyBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(GroupKeyBytes, OffsetsTopicRecords.GroupMetadataKey("grüppe"));
        Assert.Equal(new OffsetsTopicRecords.GroupKey("grüppe"), OffsetsTopicRecords.ReadKey(GroupKeyBytes));
    }

    [Fact]
    public void GroupMetadataValueBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(GroupValueBytes, OffsetsTopicRecords.GroupMetadataValue(Group));
        var read = OffsetsTopicRecords.ReadGroupValue(GroupValueBytes);
        Assert.Equal((Group.ProtocolType, Group.Generation, Group.Protocol, Group.Leader, Group.StateTimestamp),
            (read.ProtocolType, read.Generation, read.Protocol, read.Leader, read.StateTimestamp));
        Assert.Equal(2, read.Members.Count);
        for (var i = 0; i < 2; i++)
        {
            var (want, got) = (Group.Members[i], read.Members[i]);
            Assert.Equal((want.MemberId, want.GroupInstanceId, want.ClientId, want.ClientHost, want.RebalanceTimeoutMs, want.SessionTimeoutMs),
                (got.MemberId, got.GroupInstanceId, got.ClientId, got.ClientHost, got.RebalanceTimeoutMs, got.SessionTimeoutMs));
            Assert.Equal(want.Subscription, got.Subscription);
            Assert.Equal(want.Assignment, got.Assignment);
        }
        Assert.Equal(GroupValueBytes, OffsetsTopicRecords.GroupMetadataValue(read));

        var empty = new StoredGroup("", 0, null, null, -1, []);
        Assert.Equal(EmptyGroupValueBytes, OffsetsTopicRecords.GroupMetadataValue(empty));
        var readEmpty = OffsetsTopicRecords.ReadGroupValue(EmptyGroupValueBytes);
        Assert.Equal(("", 0, (string?)null, (string?)null, -1L, 0),
            (readEmpty.ProtocolType, readEmpty.Generation, readEmpty.Protocol, readEmpty.Leader, readEmpty.StateTimestamp, readEmpty.Members.Count));
    }

    [Fact]
    public void TransactionStateKeyBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(TxnKeyBytes, TransactionStateRecords.Key("tx-ü"));
        Assert.Equal("tx-ü", TransactionStateRecords.ReadKey(TxnKeyBytes));
        Assert.Null(TransactionStateRecords.ReadKey(Hex("0001", "0001", "78"))); // another key version
    }

    [Fact]
    public void TransactionStateValueBytesAreUnchangedAndRoundTrip()
    {
        Assert.Equal(TxnValueBytes, TransactionStateRecords.Value(Txn()));
        var read = TransactionStateRecords.ReadValue("tx-ü", TxnValueBytes);
        var want = Txn();
        Assert.Equal((want.TransactionalId, want.ProducerId, want.LastProducerId, want.Epoch, want.LastEpoch, want.TimeoutMs, want.State, want.StartTimeMs, want.LastUpdateMs),
            (read.TransactionalId, read.ProducerId, read.LastProducerId, read.Epoch, read.LastEpoch, read.TimeoutMs, read.State, read.StartTimeMs, read.LastUpdateMs));
        Assert.Equal(want.Partitions, read.Partitions);
        Assert.Equal(TxnValueBytes, TransactionStateRecords.Value(read));

        var empty = new TransactionMetadata("e") { State = TransactionState.PrepareEpochFence };
        Assert.Equal(EmptyTxnValueBytes, TransactionStateRecords.Value(empty));
        Assert.Equal(EmptyTxnValueBytes, TransactionStateRecords.Value(TransactionStateRecords.ReadValue("e", EmptyTxnValueBytes)));
    }

    /// <summary>
    /// A record an older broker wrote, with the group of AddOffsetsToTxn and the offsets TxnOffsetCommit staged, still
    /// reads: the group becomes its partition of <c>__consumer_offsets</c> among the transaction's partitions (so the
    /// open transaction gets its marker there), the staged offsets are ignored, and it is written back without them.
    /// </summary>
    [Fact]
    public void AnOlderTransactionStateValueWithGroupsAndStagedOffsetsStillReads()
    {
        var read = TransactionStateRecords.ReadValue("tx-ü", LegacyTxnValueBytes, group => group == "g1" ? 17 : -1);
        Assert.Equal((0x1122334455667788, (short)3, TransactionState.Ongoing), (read.ProducerId, read.Epoch, read.State));
        Assert.Equal([("__consumer_offsets", 17), ("a-topic", 0), ("b-topic", 2)], read.Partitions);
        var withoutGroups = TransactionStateRecords.ReadValue("tx-ü", LegacyTxnValueBytes);
        Assert.Equal(Txn().Partitions, withoutGroups.Partitions);
        Assert.Equal(TxnValueBytes, TransactionStateRecords.Value(withoutGroups));
    }

    public static TheoryData<string> RecordKinds() =>
        ["offset-key", "offset-value", "group-key", "group-value", "empty-group-value", "txn-key", "txn-value", "empty-txn-value"];

    /// <summary>Every strict prefix of a record is malformed: reading it throws (replay skips the record), never reads past the end.</summary>
    [Theory]
    [MemberData(nameof(RecordKinds))]
    public void TruncatedRecordThrows(string kind)
    {
        var (bytes, read) = kind switch
        {
            "offset-key" => (OffsetKeyBytes, (Action<byte[]>)(b => OffsetsTopicRecords.ReadKey(b))),
            "offset-value" => (OffsetValueBytes, b => OffsetsTopicRecords.ReadOffsetValue(b)),
            "group-key" => (GroupKeyBytes, b => OffsetsTopicRecords.ReadKey(b)),
            "group-value" => (GroupValueBytes, b => OffsetsTopicRecords.ReadGroupValue(b)),
            "empty-group-value" => (EmptyGroupValueBytes, b => OffsetsTopicRecords.ReadGroupValue(b)),
            "txn-key" => (TxnKeyBytes, b => TransactionStateRecords.ReadKey(b)),
            "txn-value" => (TxnValueBytes, b => TransactionStateRecords.ReadValue("tx-ü", b)),
            "empty-txn-value" => (EmptyTxnValueBytes, (Action<byte[]>)(b => TransactionStateRecords.ReadValue("e", b))),
            _ => throw new ArgumentException(kind),
        };
        read(bytes);
        for (var length = 0; length < bytes.Length; length++)
        {
            // An ordinary exception (replay catches everything but OutOfMemoryException and skips the record).
            Assert.Throws<ProtocolException>(() => read(bytes[..length]));
        }
    }

    [Fact]
    public void OlderOffsetValueVersionsAreRead()
    {
        var v0 = Hex("0000", "000000000000000A", "0002", "6D64", "0000000000000064");
        Assert.Equal(new CommittedOffset(10, -1, "md", 100), OffsetsTopicRecords.ReadOffsetValue(v0));
        var v1 = Hex("0001", "000000000000000B", "0000", "0000000000000065", "00000000000000C8"); // + expire timestamp
        Assert.Equal(new CommittedOffset(11, -1, "", 101), OffsetsTopicRecords.ReadOffsetValue(v1));
        Assert.Throws<InvalidDataException>(() => OffsetsTopicRecords.ReadOffsetValue(Hex("0004", "000000000000000A")));
    }

    [Fact]
    public void OlderGroupValueVersionsAreRead()
    {
        var v0 = Hex(
            "0000", "0008", "636F6E73756D6572", "00000001", "0005", "72616E6765", "0001", "61", "00000001",
            "0001", "61", "0001", "63", "0001", "68", "00002710", "00000001", "01", "00000001", "02");
        var group = OffsetsTopicRecords.ReadGroupValue(v0);
        Assert.Equal(("consumer", 1, "range", "a", -1L), (group.ProtocolType, group.Generation, group.Protocol, group.Leader, group.StateTimestamp));
        var m = Assert.Single(group.Members);
        Assert.Equal(("a", (string?)null, "c", "h", 10000, 10000), (m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost, m.RebalanceTimeoutMs, m.SessionTimeoutMs));
        Assert.Equal([1], m.Subscription);
        Assert.Equal([2], m.Assignment);
        Assert.Throws<InvalidDataException>(() => OffsetsTopicRecords.ReadGroupValue(Hex("0004", "0000")));
    }

    /// <summary>What the readers always did with negative lengths: a null (or any negative length) string reads as "" where
    /// the field is not nullable and null where it is; a negative bytes length reads as an empty array.</summary>
    [Fact]
    public void NegativeLengthsReadAsBefore()
    {
        Assert.Equal(new CommittedOffset(1, 2, "", 3),
            OffsetsTopicRecords.ReadOffsetValue(Hex("0003", "0000000000000001", "00000002", "FFFF", "0000000000000003")));
        Assert.Equal(new CommittedOffset(1, 2, "", 3),
            OffsetsTopicRecords.ReadOffsetValue(Hex("0003", "0000000000000001", "00000002", "FFFE", "0000000000000003")));
        Assert.Equal(new OffsetsTopicRecords.OffsetKey("", "", 4), OffsetsTopicRecords.ReadKey(Hex("0001", "FFFF", "8000", "00000004")));

        var group = OffsetsTopicRecords.ReadGroupValue(Hex(
            "0003", "FFFF", "00000001", "FFFE", "FFFF", "0000000000000005", "00000001",
            "FFFF", "FFFE", "FFFF", "FFFF", "00000001", "00000002", "FFFFFFFF", "80000000"));
        Assert.Equal(("", (string?)null, (string?)null), (group.ProtocolType, group.Protocol, group.Leader));
        var m = Assert.Single(group.Members);
        Assert.Equal(("", (string?)null, "", ""), (m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost));
        Assert.Empty(m.Subscription);
        Assert.Empty(m.Assignment);

        Assert.Null(TransactionStateRecords.ReadKey(Hex("0000", "FFFF")));
        var txn = TransactionStateRecords.ReadValue("t", Hex(
            "0000", "0000000000000001", "0000000000000002", "0003", "0004", "00000005", "01", "0000000000000006", "0000000000000007",
            "FFFFFFFF", "80000000", // negative counts: none
            "00000001", "0001", "67", "0001", "74", "00000000", "0000000000000008", "00000009", "FFFE"));
        Assert.Empty(txn.Partitions); // the staged offset (null metadata) is read past and ignored
    }

    /// <summary>A forged member count must not size the member list: the hand-rolled reader threw OutOfMemoryException
    /// here, which replay does not catch.</summary>
    [Fact]
    public void HugeMemberCountThrowsWithoutAllocatingForIt()
    {
        var forged = Hex("0003", "0000", "00000001", "FFFF", "FFFF", "0000000000000000", "7FFFFFFF", "0001", "61");
        Assert.Throws<ProtocolException>(() => OffsetsTopicRecords.ReadGroupValue(forged));
    }

    /// <summary>ConsumerGroupRegularExpressionKey (version 16: group, regex) and Value v0 (flexible: Topics, Version, Timestamp).</summary>
    [Fact]
    public void RegularExpressionRecordsAreInKafkasLayout()
    {
        var key = Hex("0010", "0001", "67", "0004", "6F2D2E2A"); // version 16, group "g", regex "o-.*"
        var value = Hex(
            "0000",                            // value version 0
            "03", "036F31", "036F32",          // Topics: compact array of 2, "o1" and "o2" as compact strings
            "0000000000000007",                // Version
            "0000018BCFE56800",                // Timestamp 1,700,000,000,000
            "00");                             // no tagged fields

        Assert.Equal(key, ConsumerGroupRecords.Key(ConsumerGroupRecords.RegularExpression, "g", "o-.*"));
        Assert.Equal(new OffsetsTopicRecords.ConsumerKey("g", 16, "o-.*"), OffsetsTopicRecords.ReadKey(key));
        Assert.Equal(value, ConsumerGroupRecords.RegularExpressionValue(new StoredRegularExpression(["o1", "o2"], 7, 1_700_000_000_000)));
        var read = ConsumerGroupRecords.ReadRegularExpressionValue(value);
        Assert.Equal(new[] { "o1", "o2" }, read.Topics);
        Assert.Equal((7L, 1_700_000_000_000L), (read.Version, read.TimestampMs));
    }

    [Fact]
    public void UnknownKeyVersionsAreSkipped()
    {
        Assert.Null(OffsetsTopicRecords.ReadKey(Hex("0009", "0001", "67")));
        Assert.Null(OffsetsTopicRecords.ReadKey(Hex("FFFF")));
        Assert.Equal(new OffsetsTopicRecords.ConsumerKey("g", 5, "m"), OffsetsTopicRecords.ReadKey(Hex("0005", "0001", "67", "0001", "6D")));
        Assert.Equal(new OffsetsTopicRecords.ConsumerKey("g", 3, null), OffsetsTopicRecords.ReadKey(Hex("0003", "0001", "67")));
    }
}
