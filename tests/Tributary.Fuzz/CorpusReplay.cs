namespace Tributary.Fuzz;

/// <summary>Runs a corpus, and seeded mutations of it, through <see cref="FuzzTargets.ParseRequest"/> without libFuzzer.</summary>
public static class CorpusReplay
{
    /// <returns>One line per input that threw an unexpected exception (file or mutation, and the exception).</returns>
    public static List<string> Run(string directory, int mutations, int seed)
    {
        var files = Directory.GetFiles(directory).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var corpus = files.Select(File.ReadAllBytes).ToList();
        var failures = new List<string>();
        for (var i = 0; i < corpus.Count; i++)
        {
            if (FuzzTargets.Check(corpus[i]) is { } e) failures.Add($"{Path.GetFileName(files[i])}: {e}");
        }
        if (corpus.Count == 0) return failures;
        var random = new Random(seed);
        for (var m = 0; m < mutations; m++)
        {
            var pick = random.Next(corpus.Count);
            var input = CorpusMutator.Mutate(corpus[pick], corpus, random);
            if (FuzzTargets.Check(input) is { } e)
                failures.Add($"mutation {m} of {Path.GetFileName(files[pick])} (seed {seed}), input {Convert.ToHexString(input)}: {e}");
        }
        return failures;
    }
}
