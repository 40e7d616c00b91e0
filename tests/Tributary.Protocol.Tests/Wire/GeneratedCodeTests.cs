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

    /// <summary>The committed generated code is exactly what the generator makes from ../shared (when it is present).</summary>
    [Fact]
    public void CommittedCodeMatchesTheDefinitions()
    {
        var root = RepoRoot();
        var messages = Path.Combine(root, "..", "shared", "kafka-protocol", "messages");
        var generatedDir = Path.Combine(root, "src", "Tributary.Protocol", "Generated");
        if (!Directory.Exists(messages))
        {
            // Without the definitions there is nothing to compare against; the committed code must still be there.
            Assert.NotEmpty(Directory.GetFiles(generatedDir, "*.g.cs"));
            return;
        }
        var expected = Generator.Generate(messages);
        var actual = Directory.GetFiles(generatedDir, "*.g.cs").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        var stale = expected.Where(e => actual[e.Key] != e.Value).Select(e => e.Key).ToList();
        Assert.True(stale.Count == 0, "stale generated files (run tools/ProtocolGen): " + string.Join(", ", stale));
    }
}
