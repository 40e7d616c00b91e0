using System.Globalization;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Tributary.SchemaRegistry.Http;

/// <summary>
/// Which registry of a cluster answers a request, as Confluent's followers decide: writes (register, delete, config and
/// mode changes) run on the leader of <c>_schemas</c>-0 and every other registry forwards them there over HTTP,
/// transparently (the leader's status, body and content type come back as they are); reads are answered here when this
/// registry's state is current (<see cref="IRegistryCluster.ServesReads"/>), else forwarded too.
/// <list type="bullet">
/// <item>No leader (an election, <c>_schemas</c> offline, the leader's registry not up yet) after a short wait: 50004,
/// Confluent's "Leader not known.". The leader unreachable: 50003.</item>
/// <item>The first write creates <c>_schemas</c>, so registering through any broker of a new cluster works.</item>
/// <item>Read your writes: the leader answers a write with the offset its state has applied
/// (<see cref="OffsetHeader"/>); a forwarding registry that answers reads itself holds the answer until its own state has
/// applied that far, so a client that registers through it and then reads (or produces, validated here) sees the schema.</item>
/// <item>A forwarded request is never forwarded again (<see cref="ForwardedHeader"/>): a leadership that moved meanwhile is
/// 50004 for the client to retry, not a loop.</item>
/// </list>
/// </summary>
internal sealed class RegistryRouting(SchemaStore store, IRegistryCluster cluster, System.Net.Security.SslClientAuthenticationOptions? tls = null) : IDisposable
{
    /// <summary>Set on a forwarded request: the node id of the registry that forwarded it.</summary>
    public const string ForwardedHeader = "Tributary-Forwarded-By";

    /// <summary>On a write's response from the leader: the offset of <c>_schemas</c>-0 its state had applied when it answered.</summary>
    public const string OffsetHeader = "Tributary-Schemas-Offset";

    /// <summary>Request headers a forwarded request carries, Confluent's RequestHeaderBuilder's static list.</summary>
    private static readonly string[] ForwardedRequestHeaders = ["Accept", "Authorization", "X-Request-ID", "Confluent-Accept-Unknown-Properties"];

    private static readonly TimeSpan LeaderWait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ReadYourWritesWait = TimeSpan.FromSeconds(10);

    // A leader's https URL is reached with the configured truststore (and this registry's certificate, for client auth).
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        AllowAutoRedirect = false,
        UseCookies = false,
        SslOptions = tls ?? new System.Net.Security.SslClientAuthenticationOptions(),
    })
    {
        // Above the leader's own bounds (an ISR wait of 30 s, a catch-up of 10 s), so it answers first.
        Timeout = TimeSpan.FromSeconds(60),
    };

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var forwarded = context.Request.Headers.ContainsKey(ForwardedHeader);
        if (IsWrite(context.Request))
        {
            await WriteAsync(context, next, forwarded).ConfigureAwait(false);
        }
        else if (forwarded || cluster.ServesReads)
        {
            await next(context).ConfigureAwait(false);
        }
        else
        {
            var leader = await cluster.FindLeaderAsync(LeaderWait, context.RequestAborted).ConfigureAwait(false) ?? throw RegistryException.UnknownLeader();
            if (leader.IsLocal) await next(context).ConfigureAwait(false);
            else await ForwardAsync(context, leader, write: false).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(HttpContext context, RequestDelegate next, bool forwarded)
    {
        await cluster.EnsureTopicAsync(context.RequestAborted).ConfigureAwait(false);
        var leader = await cluster.FindLeaderAsync(LeaderWait, context.RequestAborted).ConfigureAwait(false);
        if (leader is null || (forwarded && !leader.IsLocal)) throw RegistryException.UnknownLeader();
        if (leader.IsLocal)
        {
            context.Response.OnStarting(() =>
            {
                context.Response.Headers[OffsetHeader] = store.AppliedEnd.ToString(CultureInfo.InvariantCulture);
                return Task.CompletedTask;
            });
            await next(context).ConfigureAwait(false);
            return;
        }
        await ForwardAsync(context, leader, write: true).ConfigureAwait(false);
    }

    /// <summary>
    /// Confluent's writes: POST of a subject's versions (register), and every PUT and DELETE. A POST to a subject
    /// (lookup) and to /compatibility only read.
    /// </summary>
    internal static bool IsWrite(HttpRequest request)
    {
        if (HttpMethods.IsPut(request.Method) || HttpMethods.IsDelete(request.Method)) return true;
        if (!HttpMethods.IsPost(request.Method)) return false;
        var segments = (request.Path.Value ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments is ["subjects", _, "versions"];
    }

    private async Task ForwardAsync(HttpContext context, RegistryLeader leader, bool write)
    {
        var ct = context.RequestAborted;
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), leader.Url!.TrimEnd('/') + Target(context));
        if (HttpMethods.IsPost(context.Request.Method) || HttpMethods.IsPut(context.Request.Method))
        {
            // Read whole before sending (bounded by the request body limit): a failure to read is the client's, not the leader's.
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, ct).ConfigureAwait(false);
            request.Content = new ByteArrayContent(body.ToArray());
            if (context.Request.ContentType is { } contentType && MediaTypeHeaderValue.TryParse(contentType, out var parsed))
                request.Content.Headers.ContentType = parsed;
        }
        foreach (var name in ForwardedRequestHeaders)
            if (context.Request.Headers.TryGetValue(name, out var values) && values.Count > 0)
                request.Headers.TryAddWithoutValidation(name, values.ToArray());
        request.Headers.TryAddWithoutValidation(ForwardedHeader, cluster.NodeId.ToString(CultureInfo.InvariantCulture));

        HttpResponseMessage response;
        byte[] bytes;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
            bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is TaskCanceledException && !ct.IsCancellationRequested))
        {
            throw RegistryException.ForwardingFailed($"Error while forwarding the request to the leader (broker {leader.NodeId} at {leader.Url}): {e.Message}");
        }
        using (response)
        {
            if (write && response.IsSuccessStatusCode && response.Headers.TryGetValues(OffsetHeader, out var offsets)
                && long.TryParse(offsets.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var offset) && cluster.ServesReads)
            {
                // The write is done whatever happens here: a state that does not catch up in time answers anyway.
                await store.WaitAppliedAsync(offset, ReadYourWritesWait, ct).ConfigureAwait(false);
            }
            context.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } type) context.Response.ContentType = type.ToString();
            await context.Response.Body.WriteAsync(bytes, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The request's path and query as the client sent them (so an escaped subject stays escaped).</summary>
    private static string Target(HttpContext context) =>
        context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw && raw[0] == '/'
            ? raw
            : context.Request.Path.ToUriComponent() + context.Request.QueryString.ToUriComponent();

    public void Dispose() => _http.Dispose();
}
