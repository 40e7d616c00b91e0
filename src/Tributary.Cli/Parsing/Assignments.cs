using Tributary.Cli.Output;

namespace Tributary.Cli.Parsing;

/// <summary>Parses repeated <c>name=value</c> flags (<c>--config</c>, <c>--set</c>, <c>--header</c>).</summary>
public static class Assignments
{
    public static KeyValuePair<string, string> Parse(string text, string flag)
    {
        var eq = text.IndexOf('=');
        if (eq <= 0)
        {
            throw new CliException($"{flag}: expected name=value, got '{text}'");
        }
        return new(text[..eq], text[(eq + 1)..]);
    }

    public static Dictionary<string, string> ParseAll(IEnumerable<string>? texts, string flag)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var text in texts ?? [])
        {
            var (name, value) = Parse(text, flag);
            result[name] = value;
        }
        return result;
    }
}
