using System.Diagnostics;
using System.Text.RegularExpressions;
using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;

namespace Tributary.Broker.Groups;

/// <summary>
/// Matches the regex subscriptions of a consumer group against the topic names, as Kafka's
/// GroupMetadataManager.refreshRegularExpressions does: a pattern must match the whole name; internal topics are left
/// out (what Tributary has always done, and what a consumer's exclude.internal.topics asks for).
///
/// Patterns come from clients, so the work is bounded three ways. They compile with
/// <see cref="RegexOptions.NonBacktracking"/>: matching is linear in the name, as with Kafka's RE2/J, so no pattern
/// backtracks exponentially; the constructs that need backtracking (backreferences, lookarounds, atomic groups) are
/// refused, as RE2/J refuses them, and such a pattern matches nothing, as does one that does not parse. Each match
/// still has <see cref="MatchTimeout"/>, and one pattern gets <see cref="PatternBudget"/> for all the topics; a pattern
/// that runs out of time has no result. Runs on the thread pool, never on a shard's loop.
/// </summary>
internal static class TopicRegexResolver
{
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan PatternBudget = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Pattern → the names of the topics it matches; null for a pattern that ran out of time (its previous resolution,
    /// if any, should stand). <paramref name="topics"/> is read once, here.
    /// </summary>
    public static Dictionary<string, HashSet<string>?> Resolve(IReadOnlyCollection<string> patterns, IEnumerable<TopicInfo> topics)
    {
        var names = topics.Where(t => !t.IsInternal).Select(t => t.Name).ToList();
        var result = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
        foreach (var pattern in patterns) result[pattern] = Match(pattern, names);
        return result;
    }

    private static HashSet<string>? Match(string pattern, List<string> names)
    {
        const RegexOptions options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;
        var matched = new HashSet<string>(StringComparer.Ordinal);
        Regex regex;
        try
        {
            // Parsed alone first: "a)|(b" must not become a valid pattern by closing the group that anchors it.
            _ = new Regex(pattern, options, MatchTimeout);
            regex = new Regex(@"\A(?:" + pattern + @")\z", options, MatchTimeout);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            return matched;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            foreach (var name in names)
            {
                if (regex.IsMatch(name)) matched.Add(name);
                if (Stopwatch.GetElapsedTime(started) > PatternBudget) return null;
            }
        }
        catch (RegexMatchTimeoutException)
        {
            return null;
        }
        return matched;
    }
}
