using Tributary.Fuzz;

namespace Tributary.Broker.Tests;

/// <summary>
/// The fuzz target's corpus (request frames captured from real clients) and 20,000 seeded mutations of it go through
/// the request parsers; only ProtocolException and InvalidRecordException may come out. libFuzzer itself is not run
/// here (see tests/Tributary.Fuzz/README.md); this keeps what it once found from coming back.
/// </summary>
public sealed class FuzzCorpusTests
{
    [Fact]
    public void Corpus_and_seeded_mutations_raise_only_protocol_errors()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tributary.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var corpus = Path.Combine(dir.FullName, "tests", "Tributary.Fuzz", "corpus");
        Assert.True(Directory.GetFiles(corpus, "*.bin").Length >= 20, "the corpus is missing or nearly empty");

        var failures = CorpusReplay.Run(corpus, mutations: 20_000, seed: 1);

        Assert.True(failures.Count == 0, $"{failures.Count} unexpected exception(s):\n{string.Join("\n", failures.Take(5))}");
    }

    [Fact]
    public void Every_request_type_kafka_defines_is_a_fuzz_target() =>
        Assert.True(FuzzTargets.RequestTypeCount >= 80, $"only {FuzzTargets.RequestTypeCount} request types found");
}
