using System.Text.Json.Nodes;
using Tributary.SchemaRegistry.Json;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Confluent's own JSON Schema diff cases (cases from Confluent's schema-registry test resources:
/// json-schema-provider/src/test/resources/diff-schema-examples.json, diff-combined-schema-examples.json and their
/// 2020-12 versions), each a writer ("original") and reader ("update") schema with the difference types Confluent finds
/// and its verdict under the default (strict) policy: the inputs and Confluent's findings only, numbered per file. Our verdict must be Confluent's, and every difference we report
/// must be one Confluent lists (we report only the incompatible ones).
/// </summary>
public sealed class ConfluentJsonSchemaDiffCasesTests
{
    private static readonly Lazy<JsonArray> All = new(() =>
    {
        using var stream = typeof(ConfluentJsonSchemaDiffCasesTests).Assembly.GetManifestResourceStream("confluent-json-schema-diff-cases.json")!;
        return JsonNode.Parse(stream)!.AsArray();
    });

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        for (var i = 0; i < All.Value.Count; i++) data.Add(i, $"{All.Value[i]!["file"]} case {All.Value[i]!["case"]}");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Verdict_and_differences_are_confluents(int index, string name)
    {
        var c = All.Value[index]!;
        var provider = new JsonSchemaProvider();
        var original = provider.Parse(c["original_schema"]!.ToJsonString(), []);
        var update = provider.Parse(c["update_schema"]!.ToJsonString(), []);

        var issues = update.ReaderIssues(original);

        var expected = c["compatible"]!.GetValue<bool>();
        Assert.True(expected == (issues.Count == 0), $"{name}: expected {(expected ? "compatible" : "incompatible")}, got [{string.Join("; ", issues)}]");
        var confluents = c["changes"]!.AsArray().Select(x => x!.GetValue<string>()).ToHashSet();
        foreach (var issue in issues)
        {
            var type = issue.Split('\'')[1];
            Assert.True(confluents.Any(x => x.StartsWith(type + " ", StringComparison.Ordinal)), $"{name}: {type} is not among Confluent's [{string.Join(", ", confluents)}]");
        }
    }
}
