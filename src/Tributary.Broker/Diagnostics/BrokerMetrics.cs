using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Diagnostics;

/// <summary>
/// The broker's instruments (System.Diagnostics.Metrics), one <see cref="Meter"/> per broker so brokers sharing a
/// process (tests) are told apart by their meter; exporting them (Prometheus, the console) is the observability
/// layer's job. Everything is recorded per request or per partition of a request, never per record, and tags are
/// strings the broker already holds (API names are cached), so an attached listener costs little on the produce path
/// and an absent one almost nothing.
/// <list type="bullet">
/// <item><c>tributary.requests</c>, <c>tributary.request.duration</c> (ms, from the frame's arrival to its response
/// being ready), tag <c>api</c>.</item>
/// <item><c>tributary.request.errors</c>, tags <c>api</c> and <c>error</c> (Kafka's error name): per partition for
/// Produce and Fetch, <c>handler_exception</c> for a request whose handler failed.</item>
/// <item><c>tributary.produce.bytes</c>, <c>tributary.produce.records</c>, <c>tributary.fetch.bytes</c>, tag
/// <c>topic</c>: what was appended and what was served.</item>
/// <item><c>tributary.produce.wait</c> (ms): how long acknowledged produces waited for their appends to become durable
/// (Kafka's produce purgatory); <c>tributary.fetch.wait</c> (ms): how long fetches long-polled for data.</item>
/// <item><c>tributary.connections</c>, <c>tributary.groups</c>, <c>tributary.transactions.open</c>: observed when
/// collected.</item>
/// <item><c>tributary.cleaner.passes</c>, <c>tributary.cleaner.failures</c> (a failure includes a partition marked
/// uncleanable).</item>
/// </list>
/// </summary>
public sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "Tributary.Broker";

    private static readonly string[] ApiNames = BuildApiNames();

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _producedBytes;
    private readonly Counter<long> _producedRecords;
    private readonly Counter<long> _fetchedBytes;
    private readonly Histogram<double> _produceWait;
    private readonly Histogram<double> _fetchWait;
    private readonly Counter<long> _cleanerPasses;
    private readonly Counter<long> _cleanerFailures;
    private readonly Counter<long> _authentications;

    public BrokerMetrics()
    {
        Meter = new Meter(MeterName);
        _requests = Meter.CreateCounter<long>("tributary.requests", description: "Requests answered");
        _requestDuration = Meter.CreateHistogram<double>("tributary.request.duration", "ms", "From a request's arrival to its response being ready");
        _errors = Meter.CreateCounter<long>("tributary.request.errors", description: "Errors answered, by API and Kafka error");
        _producedBytes = Meter.CreateCounter<long>("tributary.produce.bytes", "By", "Record batch bytes appended");
        _producedRecords = Meter.CreateCounter<long>("tributary.produce.records", description: "Records appended");
        _fetchedBytes = Meter.CreateCounter<long>("tributary.fetch.bytes", "By", "Record batch bytes served to fetches");
        _produceWait = Meter.CreateHistogram<double>("tributary.produce.wait", "ms", "Time an acknowledged produce waited for durability");
        _fetchWait = Meter.CreateHistogram<double>("tributary.fetch.wait", "ms", "Time a fetch long-polled for data");
        _cleanerPasses = Meter.CreateCounter<long>("tributary.cleaner.passes", description: "Log cleaner passes that completed");
        _cleanerFailures = Meter.CreateCounter<long>("tributary.cleaner.failures", description: "Log cleaner passes that failed");
        _authentications = Meter.CreateCounter<long>("tributary.authentications", description: "SASL authentications, by result (success, failure)");
    }

    public Meter Meter { get; }

    /// <summary>Adds the gauges read from live components when a listener collects.</summary>
    internal void Observe(Func<int> connections, Func<int> groups, Func<int> openTransactions)
    {
        Meter.CreateObservableUpDownCounter("tributary.connections", connections, description: "Client connections open");
        Meter.CreateObservableGauge("tributary.groups", groups, description: "Consumer groups known to the coordinator");
        Meter.CreateObservableGauge("tributary.transactions.open", openTransactions, description: "Transactions in progress");
    }

    internal static string ApiName(short apiKey) => (uint)apiKey < (uint)ApiNames.Length ? ApiNames[apiKey] : "unknown";

    /// <summary>One SASL authentication ended (Kafka's successful-/failed-authentication-total).</summary>
    internal void Authenticated(bool success) => _authentications.Add(1, new KeyValuePair<string, object?>("result", success ? "success" : "failure"));

    internal void Request(short apiKey, long arrivedTimestamp)
    {
        var api = new KeyValuePair<string, object?>("api", ApiName(apiKey));
        _requests.Add(1, api);
        if (_requestDuration.Enabled) _requestDuration.Record(Stopwatch.GetElapsedTime(arrivedTimestamp).TotalMilliseconds, api);
    }

    internal void Error(short apiKey, short errorCode)
    {
        if (!_errors.Enabled) return;
        _errors.Add(1, new KeyValuePair<string, object?>("api", ApiName(apiKey)), new KeyValuePair<string, object?>("error", ((ErrorCode)errorCode).ToString()));
    }

    internal void HandlerFailed(short apiKey) =>
        _errors.Add(1, new KeyValuePair<string, object?>("api", ApiName(apiKey)), new KeyValuePair<string, object?>("error", "handler_exception"));

    internal void Produced(string topic, int bytes, int records)
    {
        var tag = new KeyValuePair<string, object?>("topic", topic);
        _producedBytes.Add(bytes, tag);
        _producedRecords.Add(records, tag);
    }

    internal void Fetched(string topic, int bytes)
    {
        if (bytes > 0) _fetchedBytes.Add(bytes, new KeyValuePair<string, object?>("topic", topic));
    }

    internal void ProduceWaited(long startTimestamp)
    {
        if (_produceWait.Enabled) _produceWait.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds);
    }

    internal void FetchWaited(TimeSpan waited)
    {
        if (_fetchWait.Enabled) _fetchWait.Record(waited.TotalMilliseconds);
    }

    internal void CleanerPassed() => _cleanerPasses.Add(1);

    internal void CleanerFailed() => _cleanerFailures.Add(1);

    private static string[] BuildApiNames()
    {
        var names = new string[100];
        for (var key = 0; key < names.Length; key++)
            names[key] = Enum.IsDefined(typeof(ApiKey), (short)key) ? ((ApiKey)key).ToString() : "api" + key;
        return names;
    }

    public void Dispose() => Meter.Dispose();
}
