using System.Globalization;
using System.Net;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 16, first step: the console port serves the broker's meters for Prometheus and Kubernetes' health probes.
/// Two brokers share this process and have meters of the same names, so each scrape must count only its own broker.
/// </summary>
public sealed class ConsoleEndpointsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly Dictionary<string, string> WithConsole = new() { [TributaryServer.ConsoleListenersSetting] = "http://127.0.0.1:0" };
    private readonly HttpClient _http = new();
    private TributaryServer _broker = null!;
    private TributaryServer _other = null!;

    public async Task InitializeAsync()
    {
        _broker = await TributaryServer.StartEphemeralAsync(settings: WithConsole);
        _other = await TributaryServer.StartEphemeralAsync(settings: WithConsole);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _broker.StopAsync();
        await _other.StopAsync();
    }

    [Fact]
    public async Task Metrics_count_exactly_what_this_broker_appended_and_served()
    {
        const int Records = 250;
        const int OtherRecords = 7;
        Produce(_broker, "scraped", Records);
        Produce(_other, "scraped", OtherRecords);
        Assert.Equal(Records, Consume(_broker, "scraped", Records));

        var text = await ScrapeAsync(_broker);
        Assert.Equal(Records, Sum(text, "tributary_produce_records_total", "scraped"));
        Assert.True(Sum(text, "tributary_fetch_bytes_total", "scraped") > 0, "fetched bytes");
        Assert.Equal(OtherRecords, Sum(await ScrapeAsync(_other), "tributary_produce_records_total", "scraped"));
        // The runtime's own meter rides along.
        Assert.Contains("dotnet_gc_collections_total", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_answer_OpenMetrics_when_the_scraper_asks_for_it()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _broker.ConsoleUrls[0] + "/metrics");
        request.Headers.Accept.ParseAdd("application/openmetrics-text; version=1.0.0");
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/openmetrics-text", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("# EOF\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_probes_answer_live_and_ready_once_the_coordinators_loaded()
    {
        using var live = await _http.GetAsync(_broker.ConsoleUrls[0] + "/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        await Eventually.TrueAsync(async () =>
        {
            using var ready = await _http.GetAsync(_broker.ConsoleUrls[0] + "/health/ready");
            return ready.StatusCode == HttpStatusCode.OK;
        }, Timeout, "/health/ready answering 200");
        Assert.True(_broker.Groups.IsLoaded && _broker.Transactions.IsLoaded, "ready only once both coordinators loaded");
    }

    [Fact]
    public async Task A_stopped_broker_closes_its_console()
    {
        var url = _other.ConsoleUrls[0];
        await _other.StopAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => _http.GetAsync(url + "/health/ready"));
        Assert.Empty(_other.ConsoleUrls);
    }

    private static void Produce(TributaryServer broker, string topic, int records)
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, Acks = Acks.All, LingerMs = 5 }).Build();
        for (var i = 0; i < records; i++) producer.Produce(topic, new Message<Null, string> { Value = "record-" + i });
        Assert.Equal(0, producer.Flush(Timeout));
    }

    private static int Consume(TributaryServer broker, string topic, int records)
    {
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = "scraper",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe(topic);
        var read = 0;
        while (read < records && consumer.Consume(Timeout) is not null) read++;
        return read;
    }

    private async Task<string> ScrapeAsync(TributaryServer broker)
    {
        using var response = await _http.GetAsync(broker.ConsoleUrls[0] + "/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>
    /// Sums the samples of <paramref name="metric"/> labelled with <paramref name="topic"/> in Prometheus' text format:
    /// <c>name{label="value",…} value [timestamp]</c>, comments starting with #.
    /// </summary>
    private static double Sum(string text, string metric, string topic)
    {
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var nameEnd = line.IndexOfAny(['{', ' ']);
            if (line[..nameEnd] != metric) continue;
            var labelsEnd = line[nameEnd] == '{' ? line.IndexOf('}', nameEnd) : nameEnd - 1;
            var labels = line[nameEnd] == '{' ? line[(nameEnd + 1)..labelsEnd] : "";
            if (!labels.Split(',').Contains($"topic=\"{topic}\"")) continue;
            sum += double.Parse(line[(labelsEnd + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return sum;
    }
}
