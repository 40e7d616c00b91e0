using Tributary.ProtocolGen;

namespace Tributary.Protocol.Tests.Wire;

public sealed class GeneratedCodeTests
{
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tributary.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    /// <summary>
    /// The committed generated code is exactly what the generator makes from ../shared/kafka-protocol. The definitions
    /// are not in the repository (shared/ says to read them in place, not copy them); every checkout this project runs
    /// in, CI's clean clone included, has shared/ beside it, so their absence is a broken checkout and fails here
    /// rather than letting the generated code drift unchecked.
    /// </summary>
    [Fact]
    public void CommittedCodeMatchesTheDefinitions()
    {
        var root = RepoRoot();
        var messages = Path.GetFullPath(Path.Combine(root, "..", "shared", "kafka-protocol", "messages"));
        var generatedDir = Path.Combine(root, "src", "Tributary.Protocol", "Generated");
        Assert.True(Directory.Exists(messages), $"the protocol definitions are missing: {messages} (shared/ must sit beside the repository)");
        Assert.NotEmpty(Directory.GetFiles(messages, "*.json"));
        var expected = Generator.Generate(messages);
        var actual = Directory.GetFiles(generatedDir, "*.g.cs").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        var stale = expected.Where(e => actual[e.Key] != e.Value).Select(e => e.Key).ToList();
        Assert.True(stale.Count == 0, "stale generated files (run tools/ProtocolGen): " + string.Join(", ", stale));
    }
}
