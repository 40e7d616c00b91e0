namespace Tributary.Broker.Tests;

/// <summary>
/// Tests that measure the whole process (allocated bytes, memory) run in this collection: xunit runs it after the
/// parallel collections, alone, so other tests' brokers do not count in their figures.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuredAlone
{
    public const string Name = "Measured alone";
}
