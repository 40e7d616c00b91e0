using Tributary.Coordination;
using Tributary.Protocol.Records;
using Tributary.SchemaRegistry.Validation;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>Broker-side validation decisions over record batches (the produce path calls this hook).</summary>
public sealed class RecordSchemaValidatorTests
{
    private static byte[] Framed(int id, params byte[] payload) =>
        [0, (byte)(id >> 24), (byte)(id >> 16), (byte)(id >> 8), (byte)id, .. payload];

    private static async Task<(RecordSchemaValidator Validator, int ValueId, int KeyId)> SetupAsync()
    {
        var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        var value = await store.RegisterAsync("t-value", new SchemaRequest("\"string\"", "AVRO", [], null, null), false);
        var key = await store.RegisterAsync("t-key", new SchemaRequest("\"long\"", "AVRO", [], null, null), false);
        return (new RecordSchemaValidator(store), value.Id, key.Id);
    }


    [Fact]
    public async Task With_nothing_to_check_no_batch_is_decoded()
    {
        var (validator, _, _) = await SetupAsync();
        // not even a valid batch: never looked at
        Assert.Null(validator.Validate("t", keys: false, values: false, new byte[] { 1, 2, 3 }));
    }

    [Fact]
    public async Task Values_need_a_registered_id_of_the_topics_subject()
    {
        var (validator, valueId, keyId) = await SetupAsync();
        var good = new RecordBatchBuilder().Add(1, null, Framed(valueId, 2, 0x61)).Add(2, null, Framed(valueId)).Build();
        Assert.Null(validator.Validate("t", keys: false, values: true, good));
        var wrongSubject = new RecordBatchBuilder().Add(1, null, Framed(valueId)).Add(2, null, Framed(keyId)).Build();
        var problem = validator.Validate("t", keys: false, values: true, wrongSubject);
        Assert.Contains("Record 1", problem, StringComparison.Ordinal);
        Assert.Contains("t-value", problem, StringComparison.Ordinal);
        var noMagic = new RecordBatchBuilder().Add(1, null, "plain"u8.ToArray()).Build();
        Assert.Contains("magic byte", validator.Validate("t", keys: false, values: true, noMagic), StringComparison.Ordinal);
        var nullValue = new RecordBatchBuilder().Add(1, null, null).Build();
        Assert.NotNull(validator.Validate("t", keys: false, values: true, nullValue));
    }

    [Fact]
    public async Task Keys_are_checked_against_the_key_subject_and_compressed_batches_are_read()
    {
        var (validator, valueId, keyId) = await SetupAsync();
        var batch = new RecordBatchBuilder { Codec = CompressionCodec.Gzip }.Add(1, Framed(keyId), Framed(valueId)).Build();
        Assert.Null(validator.Validate("t", keys: true, values: false, batch));
        var badKey = new RecordBatchBuilder { Codec = CompressionCodec.Gzip }.Add(1, Framed(valueId), Framed(valueId)).Build();
        Assert.Contains("(key)", validator.Validate("t", keys: true, values: false, badKey), StringComparison.Ordinal);
    }
}
