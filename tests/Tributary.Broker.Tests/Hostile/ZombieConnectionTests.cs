using System.Net;
using Tributary.Broker.Handlers;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// A handler that throws closes its connection for real: the peer sees the end of the stream at once, instead of a
/// socket that stays open and silently drops every later response.
/// </summary>
public sealed class ZombieConnectionTests
{
    /// <summary>Stands in for any handler bug: ListGroups always throws.</summary>
    private sealed class ThrowingListGroupsHandler : ApiHandler<ListGroupsRequest, ListGroupsResponse>
    {
        public override ApiKey Key => ApiKey.ListGroups;
        public override short MinVersion => 0;
        public override short MaxVersion => 4;

        protected override ValueTask<ListGroupsResponse?> HandleAsync(RequestContext context, ListGroupsRequest request) =>
            throw new InvalidOperationException("handler bug");
    }

    [Fact]
    public async Task AHandlerExceptionClosesTheSocketAndLaterRequestsAreNotSwallowed()
    {
        ApiRegistry? registry = null;
        registry = new ApiRegistry([new ApiVersionsHandler(() => registry!), new ThrowingListGroupsHandler()]);
        var output = new StringWriter();
        await using var listener = new KafkaListener("PLAINTEXT", new IPEndPoint(IPAddress.Loopback, 0), null, null, registry,
            new BrokerSettings(new Dictionary<string, string>()), new BrokerLog(LogLevel.Warn, TextWriter.Synchronized(output)));
        listener.Start();
        var bootstrap = $"127.0.0.1:{listener.LocalEndPoint.Port}";
        await using var client = await RawKafkaClient.ConnectAsync(bootstrap);
        var versions = await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
        Assert.Equal(0, versions.ErrorCode);

        // The failing request, then one the broker would answer: the connection must close, not answer nothing for ever.
        await client.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.ListGroups, 3, client.NextCorrelationId(), RawKafkaClient.Body(new ListGroupsRequest(), 3)));
        await client.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.ApiVersions, 0, client.NextCorrelationId(), []));
        Assert.Equal(0, await client.WaitForCloseAsync());
        Assert.Contains("ListGroups v3 failed: System.InvalidOperationException: handler bug", output.ToString());

        // Other connections are untouched.
        await using var other = await RawKafkaClient.ConnectAsync(bootstrap);
        Assert.Equal(0, (await other.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0)).ErrorCode);
    }
}
