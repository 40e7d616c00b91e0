using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// SaslAuthenticate v0-2: one step of the exchange the handshake started. A failure is SASL_AUTHENTICATION_FAILED with
/// the reason, and the connection closes after the answer; success answers the session's lifetime from v1 (KIP-368),
/// after which the client re-authenticates. ILLEGAL_SASL_STATE outside a SASL listener or before a handshake.
/// </summary>
internal sealed class SaslAuthenticateHandler : ApiHandler<SaslAuthenticateRequest, SaslAuthenticateResponse>
{
    public override ApiKey Key => ApiKey.SaslAuthenticate;
    public override short MinVersion => 0;
    public override short MaxVersion => 2;

    protected override ValueTask<SaslAuthenticateResponse?> HandleAsync(RequestContext context, SaslAuthenticateRequest request)
    {
        if (context.Sasl is not { } session)
            return new(new SaslAuthenticateResponse { ErrorCode = (short)ErrorCode.IllegalSaslState, ErrorMessage = "This listener does not use SASL" });
        var (error, message, token, lifetime) = session.Authenticate(request.AuthBytes);
        return new(new SaslAuthenticateResponse
        {
            ErrorCode = (short)error,
            ErrorMessage = message,
            AuthBytes = token,
            SessionLifetimeMs = context.ApiVersion >= 1 ? lifetime : 0,
        });
    }
}
