using Google.Protobuf.Reflection;

namespace Tributary.SchemaRegistry.Protobuf;

/// <summary>
/// Measures how deeply a .proto text nests before protobuf-net.Reflection, whose parser recurses once per level of
/// messages, oneofs and option values, reads it (20,000 nested messages overflowed the stack). Brackets of every
/// kind count (<c>{ [ ( &lt;</c> open, the others close), outside comments and string literals, which are skipped the
/// way protobuf-net's tokenizer skips them: <c>//</c> to the end of the line, <c>/* */</c> across lines, strings in
/// either quote with backslash escapes, ending at the end of their line at the latest.
/// </summary>
internal static class ProtobufNesting
{
    /// <summary>The deepest bracket nesting of <paramref name="text"/>.</summary>
    public static int Of(string text)
    {
        var depth = 0;
        var deepest = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '/' when i + 1 < text.Length && text[i + 1] == '/':
                    i = EndOf(text.IndexOf('\n', i), text);
                    break;
                case '/' when i + 1 < text.Length && text[i + 1] == '*':
                    var close = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    i = close < 0 ? text.Length : close + 1;
                    break;
                case '"' or '\'':
                    i = EndOfString(text, i);
                    break;
                case '{' or '[' or '(' or '<':
                    deepest = Math.Max(deepest, ++depth);
                    break;
                case '}' or ']' or ')' or '>':
                    // Unbalanced closes only make the text invalid; they cannot hide later opens.
                    depth = Math.Max(0, depth - 1);
                    break;
            }
        }
        return deepest;
    }

    /// <summary>The deepest nesting of message types in a descriptor, walked without recursion.</summary>
    public static int Of(FileDescriptorProto file)
    {
        var deepest = 0;
        var pending = new Stack<(DescriptorProto Message, int Depth)>(file.MessageTypes.Select(m => (m, 1)));
        while (pending.TryPop(out var next))
        {
            deepest = Math.Max(deepest, next.Depth);
            foreach (var nested in next.Message.NestedTypes) pending.Push((nested, next.Depth + 1));
        }
        return deepest;
    }

    private static int EndOf(int index, string text) => index < 0 ? text.Length : index;

    /// <summary>The index of the quote that closes the literal opened at <paramref name="open"/>, or of its line's end.</summary>
    private static int EndOfString(string text, int open)
    {
        var quote = text[open];
        for (var i = open + 1; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length && text[i + 1] != '\n') i++;
            else if (c == quote || c == '\n') return i;
        }
        return text.Length;
    }
}
