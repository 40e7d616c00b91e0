using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// SaslHandshake v0-1: the client names its mechanism. On a SASL listener the connection's session checks it against
/// sasl.enabled.mechanisms (UNSUPPORTED_SASL_MECHANISM closes the connection); after v0 the tokens come as bare frames,
/// after v1 in SaslAuthenticate. Elsewhere it is ILLEGAL_SASL_STATE, as Kafka answers on a non-SASL listener. v0 is
/// served because librdkafka up to 2.11 looks for it.
/// </summary>
internal sealed class SaslHandshakeHandler : ApiHandler<SaslHandshakeRequest, SaslHandshakeResponse>
{
    public override ApiKey Key => ApiKey.SaslHandshake;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override ValueTask<SaslHandshakeResponse?> HandleAsync(RequestContext context, SaslHandshakeRequest request) =>
        new(context.Sasl is { } session
            ? session.Handshake(request.Mechanism, context.ApiVersion)
            : new SaslHandshakeResponse { ErrorCode = (short)ErrorCode.IllegalSaslState });
}
