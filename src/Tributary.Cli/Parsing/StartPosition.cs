using System.Globalization;
using Confluent.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Parsing;

/// <summary>
/// Where <c>consume --from</c> starts: a logical offset (beginning, end), an exact offset, or a
/// timestamp that OffsetsForTimes turns into the first offset at or after it.
/// </summary>
public readonly record struct StartPosition(Offset Offset, long? TimestampMs)
{
    public bool IsLogical => TimestampMs is null && Offset.IsSpecial;

    public static StartPosition Parse(string text)
    {
        switch (text.ToLowerInvariant())
        {
            case "beginning" or "start" or "oldest" or "earliest":
                return new(Offset.Beginning, null);
            case "end" or "newest" or "latest":
                return new(Offset.End, null);
        }
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            return new(new Offset(offset), null);
        }
        if (text.StartsWith('@') && long.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            return new(Offset.Unset, ms);
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            return new(Offset.Unset, at.ToUnixTimeMilliseconds());
        }
        throw new CliException($"--from: expected beginning, end, an offset, @TIMESTAMP_MS or an ISO-8601 time, got '{text}'");
    }
}
