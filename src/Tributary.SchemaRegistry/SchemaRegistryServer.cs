using System.Buffers;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Tributary.SchemaRegistry.Http;
using Tributary.SchemaRegistry.Security;

namespace Tributary.SchemaRegistry;

/// <summary>
/// The schema registry's HTTP server: Kestrel on one or more listeners (<c>http://host:port</c>, <c>https://host:port</c>,
/// port 0 for any free one), serving <see cref="RegistryEndpoints"/> over a <see cref="SchemaStore"/>. No logging
/// providers, no middleware but authentication (<see cref="RegistryAuthentication"/>, when configured), routing and the
/// error mapper: the id lookup path stays short.
/// </summary>
public sealed class SchemaRegistryServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly RegistryRouting? _routing;

    private SchemaRegistryServer(WebApplication app, SchemaStore store, IReadOnlyList<string> urls, RegistryRouting? routing)
    {
        _app = app;
        Store = store;
        Urls = urls;
        _routing = routing;
    }

    public SchemaStore Store { get; }

    /// <summary>The URL clients use, e.g. http://127.0.0.1:8081 (the bound port when 0 was asked for): the first listener's.</summary>
    public string Url => Urls[0];

    /// <summary>Every listener's URL, in the order given.</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <param name="store">Opened by the caller (<see cref="SchemaStore.OpenAsync"/>), which disposes it after this server.</param>
    /// <param name="kafkaClusterId">The broker's cluster id, reported by <c>GET /v1/metadata/id</c>.</param>
    /// <param name="cluster">The other brokers' registries, in a cluster: writes go to the leader's (<see cref="RegistryRouting"/>).</param>
    /// <param name="listeners">Comma-separated <c>http://host:port</c> and <c>https://host:port</c> listeners.</param>
    /// <param name="security">TLS for https listeners and forwarding, and who may call; null: plain http, open to all.</param>
    public static async Task<SchemaRegistryServer> StartAsync(SchemaStore store, string listeners, string? kafkaClusterId = null,
        CancellationToken cancellationToken = default, IRegistryCluster? cluster = null, RegistrySecurity? security = null)
    {
        var parsed = ParseListeners(listeners);
        if (parsed.Any(l => l.Https) && security?.ServerTls is null)
            throw new InvalidOperationException("an https registry listener needs a certificate: set schema.registry.ssl.keystore.location");
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        var bound = new List<(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions Options, Listener Listener)>();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = MaxRequestBodyBytes;
            foreach (var listener in parsed)
            {
                k.Listen(listener.Host, listener.Port, options =>
                {
                    if (listener.Https)
                    {
                        // Per connection, so a renewed certificate on disk is served without a restart.
                        options.UseHttps(new TlsHandshakeCallbackOptions
                        {
                            OnConnection = _ => ValueTask.FromResult(security!.ServerTls!()),
                        });
                    }
                    bound.Add((options, listener));
                });
            }
        });
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        if (security?.Authentication is { } authentication) app.Use(authentication.InvokeAsync);
        app.Use(MapErrorsAsync);
        var routing = cluster is null ? null : new RegistryRouting(store, cluster, security?.ForwardingTls);
        if (routing is not null) app.Use(routing.InvokeAsync);
        app.UseRouting();
        new RegistryEndpoints(store, kafkaClusterId).Map(app);
        app.MapFallback(c => RegistryJson.WriteErrorAsync(c, 404, 404, "HTTP 404 Not Found"));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var urls = bound.Select(b =>
        {
            var host = IPAddress.Any.Equals(b.Listener.Host) || IPAddress.IPv6Any.Equals(b.Listener.Host) ? "localhost"
                : b.Listener.Host.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{b.Listener.Host}]" : b.Listener.Host.ToString();
            return $"{(b.Listener.Https ? "https" : "http")}://{host}:{b.Options.IPEndPoint!.Port}";
        }).ToList();
        return new SchemaRegistryServer(app, store, urls, routing);
    }

    private static async Task MapErrorsAsync(HttpContext context, RequestDelegate next)
    {
        // Content negotiation first, as JAX-RS does before it reaches a resource.
        if (RegistryJson.ResponseType(context.Request) is null)
        {
            await RegistryJson.WriteErrorAsync(context, 406, 406, "HTTP 406 Not Acceptable").ConfigureAwait(false);
            return;
        }
        if (HttpMethods.IsPost(context.Request.Method) || HttpMethods.IsPut(context.Request.Method))
        {
            if (!RegistryJson.IsReadable(context.Request.ContentType))
            {
                await RegistryJson.WriteErrorAsync(context, 415, 415, "HTTP 415 Unsupported Media Type").ConfigureAwait(false);
                return;
            }
            if (context.Request.ContentLength > MaxRequestBodyBytes)
            {
                await RefuseTooLargeAsync(context, $"Request body of {context.Request.ContentLength} bytes").ConfigureAwait(false);
                return;
            }
            // A body of undeclared length (chunked) is counted as it is read; Kestrel's own limit would end the
            // connection there, where this one answers 413 and drains what is left.
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
            context.Request.Body = new BoundedRequestBody(context.Request.Body, MaxRequestBodyBytes);
        }
        try
        {
            await next(context).ConfigureAwait(false);
            if (context.Response.StatusCode == 405 && !context.Response.HasStarted)
                await RegistryJson.WriteErrorAsync(context, 405, 405, "HTTP 405 Method Not Allowed").ConfigureAwait(false);
        }
        catch (BoundedRequestBody.TooLargeException) when (!context.Response.HasStarted)
        {
            await RefuseTooLargeAsync(context, "Request body").ConfigureAwait(false);
        }
        catch (RegistryException e) when (!context.Response.HasStarted)
        {
            await RegistryJson.WriteErrorAsync(context, e.HttpStatus, e.ErrorCode, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            await RegistryJson.WriteErrorAsync(context, 500, 50001, $"Internal error: {e.Message}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The largest request body read (Kestrel's default, 30 MB). A schema is text a person wrote; far larger bodies are
    /// refused with 413 before any of them is parsed.
    /// </summary>
    public const long MaxRequestBodyBytes = 30_000_000;

    /// <summary>Bodies up to this size are read and discarded after a 413, so the client sees the answer, not a reset.</summary>
    private const long MaxDrainedBytes = 256L << 20;

    /// <summary>
    /// 413 with Confluent's error body. A client that sends its whole body before it reads the answer (most do) would
    /// see its connection reset if the server closed with the body unread, so after the answer the rest of the body is
    /// read and dropped through one small buffer, up to a size and time bound; then the connection closes.
    /// </summary>
    private static async Task RefuseTooLargeAsync(HttpContext context, string what)
    {
        context.Response.Headers.Connection = "close";
        await RegistryJson.WriteErrorAsync(context, 413, 413, $"{what} exceeds the limit of {MaxRequestBodyBytes} bytes").ConfigureAwait(false);
        await context.Response.CompleteAsync().ConfigureAwait(false);
        if (context.Request.ContentLength > MaxDrainedBytes) return;
        var body = context.Request.Body is BoundedRequestBody bounded ? bounded.Inner : context.Request.Body;
        var buffer = ArrayPool<byte>.Shared.Rent(64 << 10);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
            for (long drained = 0; drained < MaxDrainedBytes;)
            {
                var read = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
                if (read == 0) break;
                drained += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
        {
            // The client went away or was too slow: the connection closes either way.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One listener: where it binds, and whether it speaks TLS.</summary>
    public readonly record struct Listener(IPAddress Host, int Port, bool Https);

    /// <summary>Accepts <c>http://host:port</c>, <c>https://host:port</c> or <c>host:port</c> (http), comma-separated.</summary>
    public static IReadOnlyList<Listener> ParseListeners(string listeners)
    {
        var parsed = listeners.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseOne).ToList();
        return parsed.Count > 0 ? parsed : throw new UriFormatException("schema.registry.listeners: no listener given");
    }

    /// <summary>The first of a comma-separated list (<see cref="ParseListeners"/>).</summary>
    public static (IPAddress Host, int Port) ParseListener(string listener)
    {
        var first = ParseListeners(listener)[0];
        return (first.Host, first.Port);
    }

    private static Listener ParseOne(string text)
    {
        var uri = new Uri(text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text);
        var https = uri.Scheme switch
        {
            "http" => false,
            "https" => true,
            _ => throw new UriFormatException($"schema.registry.listeners: {text}: the scheme is http or https"),
        };
        var host = ListenerHost.Resolve(uri);
        var explicitPort = uri.IsDefaultPort && !text.EndsWith(https ? ":443" : ":80", StringComparison.Ordinal);
        return new Listener(host, explicitPort ? 8081 : uri.Port, https);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _routing?.Dispose();
    }
}
