namespace Tributary.ProtocolGen;

/// <summary>Turns a folder of Kafka message definitions into the generated C# files, by file name.</summary>
public static class Generator
{
    public static SortedDictionary<string, string> Generate(string messagesDir)
    {
        var specs = Directory.GetFiles(messagesDir, "*.json").Order(StringComparer.Ordinal).Select(MessageSpec.Load).ToList();
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var spec in specs)
            files[spec.Name + ".g.cs"] = new MessageEmitter(spec).Emit();
        files["ApiKeys.g.cs"] = ApiCatalogEmitter.Emit(specs);
        files["ErrorCode.g.cs"] = ErrorCodeEmitter.Emit(Path.Combine(messagesDir, "..", "error-codes.tsv"));
        return files;
    }
}
