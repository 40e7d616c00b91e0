namespace Tributary.Broker.Groups;

/// <summary>
/// Regex subscriptions of KIP-848 groups, resolved off the heartbeat as Kafka's group coordinator resolves them
/// (GroupMetadataManager.maybeUpdateRegularExpressions, refreshRegularExpressions, handleRegularExpressionsResult).
///
/// A heartbeat never matches a pattern. A member's subscription is its topic names plus what its regex matched at the
/// group's last refresh (<see cref="ConsumerGroup.ResolvedRegexes"/>); an unresolved regex adds nothing yet. After a
/// heartbeat has applied the member's changes, it starts a refresh of all the group's regexes when
/// <list type="number">
/// <item>the group's members subscribe to regexes and no refresh of the group is running;</item>
/// <item>the last refresh (or failed attempt) is more than <see cref="RegexRefreshMinIntervalMs"/> old, or there was
///   none: Kafka's REGEX_BATCH_REFRESH_MIN_INTERVAL_MS, so that regexes brought by several members within 10 s resolve
///   in one batch and cost one rebalance;</item>
/// <item>and a regex is unresolved, or a topic was created since the last resolution (the catalog's
///   <see cref="Metadata.TopicCatalog.Creations"/>, Kafka's lastMetadataImageWithNewTopics), or the last resolution is
///   older than group.consumer.regex.refresh.interval.ms (Kafka's, 10 minutes by default).</item>
/// </list>
/// The refresh matches the patterns against a snapshot of the topic list on the thread pool (bounded in time by
/// <see cref="TopicRegexResolver"/>) and posts the result back to the loop. There, each regex still subscribed takes its
/// new resolution, persisted as a ConsumerGroupRegularExpression record (key version 16) so a reload keeps it; when a
/// regex matches other topics than before, or the group's subscribed topics changed, the group epoch is bumped and the
/// target assignment recomputed. Members learn of it at their next heartbeat.
///
/// So a member that joins with topic names and a regex gets the named topics' partitions in its first heartbeat's
/// response and the regex's in a later one, as librdkafka's tests expect of Kafka 4 (0045-subscribe_update: "KIP-848
/// broker is assigning literal topics first in 1 HB call and all the matched ones in later HB call"); a topic created
/// later that matches joins at a heartbeat more than 10 s after the last refresh, and reaches the members at the next.
/// A deleted topic needs no refresh: it leaves the subscriptions as soon as the catalog drops it, and the next refresh
/// drops it from the resolution. A regex no member subscribes to any more is dropped at once (a tombstone).
///
/// Differences from Kafka: a member that joins or changes its regex bumps the group epoch even while the regex is
/// unresolved (Kafka waits for the resolution: one rebalance fewer, the same assignments); resolutions are not filtered
/// by DESCRIBE permission (Tributary has no authorizer); the resolution version counts topic creations of this process,
/// so resolutions replayed from the log are refreshed at the first chance (Kafka compares metadata offsets, and after a
/// load its image is newer than them too).
/// </summary>
internal sealed partial class GroupShard
{
    /// <summary>The least time between two refreshes of a group's regexes (Kafka's REGEX_BATCH_REFRESH_MIN_INTERVAL_MS).</summary>
    internal const int RegexRefreshMinIntervalMs = 10_000;

    private static HashSet<string> SubscribedRegexes(ConsumerGroup consumer) =>
        consumer.Members.Values.Select(m => m.SubscribedTopicRegex).OfType<string>().ToHashSet(StringComparer.Ordinal);

    /// <summary>When the group's regexes were last resolved, or failed to be; <see cref="long.MinValue"/> if never.</summary>
    private static long LastRegexRefreshMs(ConsumerGroup consumer) =>
        Math.Max(consumer.RegexRefreshFailedAtMs, consumer.ResolvedRegexes.Count == 0 ? long.MinValue : consumer.ResolvedRegexes.Values.Max(r => r.TimestampMs));

    /// <summary>Starts a refresh of the group's regexes if one is due (the conditions of the class comment).</summary>
    private void MaybeRefreshRegexes(Group group, ConsumerGroup consumer)
    {
        if (consumer.RegexRefreshRunning) return;
        var regexes = SubscribedRegexes(consumer);
        if (regexes.Count == 0) return;
        var now = NowMs;
        var last = LastRegexRefreshMs(consumer);
        if (last != long.MinValue && now <= last + RegexRefreshMinIntervalMs) return;
        // Read before the topic list is: a topic created meanwhile leaves this version behind, so it is not missed.
        var version = _topics.Creations;
        var due = regexes.Any(r => !consumer.ResolvedRegexes.ContainsKey(r))
            || consumer.ResolvedRegexes.Values.Any(r => r.Replayed || r.Version < version)
            || now > last + Settings.ConsumerRegexRefreshIntervalMs;
        if (!due) return;

        consumer.RegexRefreshRunning = true;
        var topics = _topics;
        _ = Task.Run(() => TopicRegexResolver.Resolve(regexes, topics.Topics))
            .ContinueWith(resolved => _context.Post(() => ApplyRegexResolution(group.Id, consumer, resolved, version, now)), TaskScheduler.Default);
    }

    /// <summary>On the loop: the refresh's result replaces the resolutions of the regexes still subscribed.</summary>
    private void ApplyRegexResolution(string groupId, ConsumerGroup consumer, Task<Dictionary<string, HashSet<string>?>> resolved, long version, long startedMs)
    {
        consumer.RegexRefreshRunning = false;
        // The group may have been deleted, or emptied and created anew, while the refresh ran.
        if (!_groups.TryGetValue(groupId, out var group) || !ReferenceEquals(group.Consumer, consumer)) return;
        if (!resolved.IsCompletedSuccessfully)
        {
            consumer.RegexRefreshFailedAtMs = startedMs;
            _log.Error($"group {groupId}: could not resolve its regular expressions: {resolved.Exception?.GetBaseException().Message}");
            return;
        }

        var subscribed = SubscribedRegexes(consumer);
        var changed = false;
        foreach (var (regex, topics) in resolved.Result)
        {
            if (!subscribed.Contains(regex)) continue;
            if (topics is null)
            {
                // Out of time: what it matched before stands, and the next attempt waits the batch interval.
                consumer.RegexRefreshFailedAtMs = startedMs;
                _log.Warn($"group {groupId}: matching regular expression '{regex}' against the topics ran out of time; left as it was");
                continue;
            }
            var old = consumer.ResolvedRegexes.GetValueOrDefault(regex);
            if (!(old?.Topics ?? new HashSet<string>()).SetEquals(topics)) changed = true;
            consumer.ResolvedRegexes[regex] = new ResolvedRegex(topics, version, startedMs);
        }

        var topology = ResolveSubscriptions(consumer);
        if (changed || !SameTopology(topology, consumer.TopicPartitionCounts))
        {
            consumer.GroupEpoch++;
            consumer.TopicPartitionCounts = topology;
            ComputeTargetAssignment(consumer);
        }
        _ = PersistConsumerGroup(group, true);
    }
}
