using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Tributary.SchemaRegistry.Http;

namespace Tributary.Server.Console;

/// <summary>
/// The broker's operator-facing HTTP port (<c>console.listeners</c>, default http://0.0.0.0:8080): Kestrel, as the schema
/// registry hosts it, serving
/// <list type="bullet">
/// <item><c>/metrics</c>: the broker's meters in Prometheus text format, or OpenMetrics when the scraper's Accept header
/// asks for it, plus the runtime's <c>System.Runtime</c> meter (GC, thread pool, memory).</item>
/// <item><c>/health/live</c>: 200 while the process answers, Kubernetes' liveness probe.</item>
/// <item><c>/health/ready</c>: 200 once the broker can serve, else 503 with <c>{"status":"unavailable","reason":…}</c>,
/// the readiness probe.</item>
/// </list>
/// Every broker's meters share their names (one <see cref="Meter"/> per broker instance), so the exporter keeps only
/// the instances it was given: brokers sharing a process (tests) each export their own figures.
/// </summary>
public sealed class ConsoleServer : IAsyncDisposable
{
    /// <summary>.NET's built-in runtime meter (since .NET 9): GC, thread pool, JIT and memory, at no extra package.</summary>
    private const string RuntimeMeterName = "System.Runtime";

    private readonly WebApplication _app;
    private readonly MeterProvider _meters;

    private ConsoleServer(WebApplication app, MeterProvider meters, IReadOnlyList<string> urls)
    {
        _app = app;
        _meters = meters;
        Urls = urls;
    }

    /// <summary>Every listener's URL (the bound port when 0 was asked for), in the order given.</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <param name="listeners">Comma-separated http://host:port listeners.</param>
    /// <param name="meters">This broker's meter instances; only they (and the runtime's) are exported.</param>
    /// <param name="notReadyReason">Why the broker cannot serve yet, or null when it is ready.</param>
    public static async Task<ConsoleServer> StartAsync(string listeners, IReadOnlyCollection<Meter> meters, Func<string?> notReadyReason,
        CancellationToken cancellationToken = default)
    {
        var parsed = ParseListeners(listeners);
        var builder = Sdk.CreateMeterProviderBuilder().AddMeter([.. meters.Select(m => m.Name).Distinct(), RuntimeMeterName])
            // A view sees the instrument's Meter instance, where AddMeter sees only names: drop other brokers' meters.
            .AddView(instrument => meters.Contains(instrument.Meter) || instrument.Meter.Name == RuntimeMeterName ? null : MetricStreamConfiguration.Drop)
            // Every scrape collects afresh: a cached response would show a count that is already behind.
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        var meterProvider = builder.Build();
        try
        {
            var web = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            var bound = new List<(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions Options, IPAddress Host)>();
            web.WebHost.UseKestrelCore().ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                foreach (var (host, port) in parsed)
                    k.Listen(host, port, options => bound.Add((options, host)));
            });
            web.Services.AddRoutingCore();
            var app = web.Build();
            app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider, predicate: null, path: "/metrics", configureBranchedPipeline: null, optionsName: null);
            app.UseRouting();
            app.MapGet("/health/live", () => Results.Text("{\"status\":\"live\"}", "application/json"));
            app.MapGet("/health/ready", () => notReadyReason() is { } reason
                ? Results.Text(JsonSerializer.Serialize(new { status = "unavailable", reason }), "application/json", statusCode: 503)
                : Results.Text("{\"status\":\"ready\"}", "application/json"));
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            var urls = bound.Select(b =>
            {
                var host = IPAddress.Any.Equals(b.Host) || IPAddress.IPv6Any.Equals(b.Host) ? "localhost"
                    : b.Host.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{b.Host}]" : b.Host.ToString();
                return $"http://{host}:{b.Options.IPEndPoint!.Port}";
            }).ToList();
            return new ConsoleServer(app, meterProvider, urls);
        }
        catch
        {
            meterProvider.Dispose();
            throw;
        }
    }

    /// <summary>Comma-separated http://host:port; a wildcard or empty host listens on every interface.</summary>
    public static IReadOnlyList<(IPAddress Host, int Port)> ParseListeners(string listeners)
    {
        var parsed = listeners.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseOne).ToList();
        return parsed.Count > 0 ? parsed : throw new UriFormatException("console.listeners: no listener given");
    }

    private static (IPAddress Host, int Port) ParseOne(string text)
    {
        var uri = new Uri(text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text);
        if (uri.Scheme != "http") throw new UriFormatException($"console.listeners: {text}: the scheme is http");
        var host = ListenerHost.Resolve(uri);
        // "http://host" without a port means the console's default, not HTTP's 80.
        var noPort = uri.IsDefaultPort && !text.EndsWith(":80", StringComparison.Ordinal);
        return (host, noPort ? 8080 : uri.Port);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _meters.Dispose();
    }
}
