using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Handlers;

/// <summary>
/// One Kafka API. Each handler says which versions it serves; ApiVersions is built from the set of handlers, so what
/// the broker advertises is exactly what it implements.
/// </summary>
internal abstract class ApiHandler
{
    public abstract ApiKey Key { get; }
    public abstract short MinVersion { get; }
    public abstract short MaxVersion { get; }

    public bool Supports(short version) => version >= MinVersion && version <= MaxVersion;

    public abstract IKafkaRequest Parse(ref KafkaReader reader, short version);

    /// <summary>The response, or null when none is sent (a produce with acks=0).</summary>
    public abstract ValueTask<IKafkaResponse?> HandleAsync(RequestContext context, IKafkaRequest request);
}

internal abstract class ApiHandler<TRequest, TResponse> : ApiHandler
    where TRequest : IKafkaRequest, new()
    where TResponse : class, IKafkaResponse
{
    public sealed override IKafkaRequest Parse(ref KafkaReader reader, short version)
    {
        var request = new TRequest();
        request.Read(ref reader, version);
        return request;
    }

    public sealed override ValueTask<IKafkaResponse?> HandleAsync(RequestContext context, IKafkaRequest request)
    {
        var pending = HandleAsync(context, (TRequest)request);
        return pending.IsCompletedSuccessfully ? new ValueTask<IKafkaResponse?>(pending.Result) : Await(pending);

        static async ValueTask<IKafkaResponse?> Await(ValueTask<TResponse?> pending) => await pending.ConfigureAwait(false);
    }

    protected abstract ValueTask<TResponse?> HandleAsync(RequestContext context, TRequest request);
}
