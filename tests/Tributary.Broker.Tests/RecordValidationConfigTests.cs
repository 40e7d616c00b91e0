namespace Tributary.Broker.Tests;

/// <summary>The broker reads the validation topic configs; the validator is told only which parts to check.</summary>
public sealed class RecordValidationConfigTests
{
    [Fact]
    public void Only_a_true_value_turns_a_part_on()
    {
        Assert.False(RecordValidation.Parts(new Dictionary<string, string>()).Any);
        Assert.False(RecordValidation.Parts(new Dictionary<string, string> { [RecordValidation.ValueConfig] = "false" }).Any);
        Assert.Equal(new ValidatedParts(Keys: false, Values: true), RecordValidation.Parts(new Dictionary<string, string> { [RecordValidation.ValueConfig] = " TRUE " }));
        Assert.Equal(new ValidatedParts(Keys: true, Values: false), RecordValidation.Parts(new Dictionary<string, string> { [RecordValidation.KeyConfig] = "true" }));
    }
}
