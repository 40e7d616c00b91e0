// ProtocolGen: reads Kafka's message definitions (../shared/kafka-protocol/messages/*.json) and writes one C# file
// per message into src/Tributary.Protocol/Generated. The output is committed; a test regenerates it and diffs, and
// fails when ../shared/kafka-protocol is absent (shared/ sits beside every checkout, CI's included).
//
// Usage: ProtocolGen <messages-dir> <output-dir> [--check]
//   --check: write nothing, exit 1 if any generated file would change (used by tests and CI).

using System.Text;
using Tributary.ProtocolGen;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ProtocolGen <messages-dir> <output-dir> [--check]");
    return 2;
}

var messagesDir = args[0];
var outputDir = args[1];
var check = args.Contains("--check");

var files = Generator.Generate(messagesDir);

var stale = new List<string>();
foreach (var (name, text) in files)
{
    var path = Path.Combine(outputDir, name);
    var current = File.Exists(path) ? File.ReadAllText(path) : null;
    if (current == text) continue;
    stale.Add(name);
    if (!check)
    {
        Directory.CreateDirectory(outputDir);
        File.WriteAllText(path, text, new UTF8Encoding(false));
    }
}
if (Directory.Exists(outputDir))
{
    foreach (var existing in Directory.GetFiles(outputDir, "*.g.cs"))
    {
        if (files.ContainsKey(Path.GetFileName(existing))) continue;
        stale.Add(Path.GetFileName(existing));
        if (!check) File.Delete(existing);
    }
}

if (check && stale.Count > 0)
{
    Console.Error.WriteLine($"generated protocol code is stale: {string.Join(", ", stale)}");
    return 1;
}
Console.WriteLine(check ? $"{files.Count} generated files up to date" : $"{files.Count} files generated, {stale.Count} changed");
return 0;
