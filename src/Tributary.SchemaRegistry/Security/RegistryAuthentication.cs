using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Http;
using Tributary.SchemaRegistry.Http;

namespace Tributary.SchemaRegistry.Security;

/// <summary>
/// Authentication and authorization of registry requests, before anything else runs (content negotiation, forwarding to
/// the leader, the routes), as Jetty's security handler runs before Confluent's resources:
/// <list type="bullet">
/// <item>HTTP Basic (RFC 7617) when <see cref="Basic"/>: the user and password go to <see cref="CheckPassword"/>;</item>
/// <item>bearer tokens (RFC 6750) when <see cref="Bearer"/>: the token goes to <see cref="ValidateToken"/>;</item>
/// <item>no <c>Authorization</c> header (or neither Basic nor Bearer on) but a client certificate, verified by the TLS
/// handshake: <see cref="CertificatePrincipal"/> when set (Confluent's SSL mechanism);</item>
/// <item>no credentials: <see cref="Anonymous"/> when set, else refused.</item>
/// </list>
/// Refusals are Confluent's error bodies: 401 <c>{"error_code":401,...}</c> with a <c>WWW-Authenticate</c> challenge per
/// method for missing or wrong credentials (wrong ones after <see cref="FailureDelay"/>); 403 when the principal holds
/// none of <see cref="RequiredRoles"/> or its roles do not grant the request's <see cref="RegistryAccess"/>
/// (<see cref="Roles"/>). Listings are not refused but filtered: <see cref="MayRead"/> tells the routes which subjects
/// to show. The principal is left in <see cref="HttpContext.Items"/> under <see cref="PrincipalKey"/>.
/// <para>
/// A registry that forwards a request to the leader sends the <c>Authorization</c> header along, so the leader checks the
/// same credentials again: every broker of a cluster needs the same security settings. A request authenticated by its
/// certificate reaches the leader as the forwarding registry's own certificate, as in Confluent's registry.
/// </para>
/// </summary>
public sealed class RegistryAuthentication
{
    public const string PrincipalKey = "Tributary.RegistryPrincipal";

    private const string ReadableKey = "Tributary.RegistryReadable";

    public bool Basic { get; init; }

    public bool Bearer { get; init; }

    public string Realm { get; init; } = "SchemaRegistry";

    /// <summary>A user's principal when the password is right; null when it is wrong or the user unknown. Constant time.</summary>
    public Func<string, string, RegistryPrincipal?>? CheckPassword { get; init; }

    /// <summary>A token's principal; throws <see cref="InvalidCredentialsException"/> saying why it is not valid.</summary>
    public Func<string, RegistryPrincipal>? ValidateToken { get; init; }

    /// <summary>
    /// The principal of a verified client certificate; throws <see cref="InvalidCredentialsException"/> when it maps to
    /// none. Null: certificates are not credentials (they may still be required by the handshake).
    /// </summary>
    public Func<X509Certificate2, RegistryPrincipal>? CertificatePrincipal { get; init; }

    /// <summary>How long wrong credentials wait for their 401, as Kafka's <c>connection.failed.authentication.delay.ms</c>.</summary>
    public TimeSpan FailureDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The principal of requests without credentials (<c>schema.registry.anonymous.access</c>); null: they get 401.</summary>
    public RegistryPrincipal? Anonymous { get; init; }

    /// <summary>Confluent's <c>authentication.roles</c>: an authenticated principal must hold one of them; null: any principal.</summary>
    public IReadOnlySet<string>? RequiredRoles { get; init; }

    /// <summary>What each role may do; null: an authenticated principal may do everything.</summary>
    public RegistryRoles? Roles { get; init; }

    public sealed class InvalidCredentialsException(string message) : Exception(message);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        RegistryPrincipal? principal;
        try
        {
            principal = Authenticate(context);
        }
        catch (InvalidCredentialsException e)
        {
            // Slows a password guesser down without holding a thread; requests that succeed never wait.
            await Task.Delay(FailureDelay, context.RequestAborted).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!context.RequestAborted.IsCancellationRequested) await ChallengeAsync(context, e.Message).ConfigureAwait(false);
            return;
        }
        if (principal is null)
        {
            await ChallengeAsync(context, "Unauthorized: no credentials").ConfigureAwait(false);
            return;
        }
        if (RequiredRoles is { } required && !ReferenceEquals(principal, Anonymous) && !principal.Roles.Overlaps(required))
        {
            await RegistryJson.WriteErrorAsync(context, 403, 403, $"User {principal.Name} has none of the roles allowed to use the registry").ConfigureAwait(false);
            return;
        }
        if (Roles is { } roles)
        {
            var access = RegistryAccess.Of(context.Request);
            if (access.Listing)
            {
                var reader = principal;
                context.Items[ReadableKey] = (Func<string?, bool>)(subject => roles.Allows(reader, new(RegistryPermission.Read, subject, false)));
            }
            else if (!roles.Allows(principal, access))
            {
                await RegistryJson.WriteErrorAsync(context, 403, 403, $"User {principal.Name} is denied {access}").ConfigureAwait(false);
                return;
            }
        }
        context.Items[PrincipalKey] = principal;
        await next(context).ConfigureAwait(false);
    }

    /// <summary>Whether the principal of a listing may see <paramref name="subject"/> in it; true without authorization.</summary>
    public static bool MayRead(HttpContext context, string subject) => Readable(context, subject);

    /// <summary>Whether the principal of a listing may read some subject, existing or not; true without authorization.</summary>
    public static bool MayReadSome(HttpContext context) => Readable(context, null);

    private static bool Readable(HttpContext context, string? subject) =>
        !context.Items.TryGetValue(ReadableKey, out var readable) || ((Func<string?, bool>)readable!)(subject);

    /// <summary>The request's principal; null when it brings no credentials and anonymous access is off.</summary>
    private RegistryPrincipal? Authenticate(HttpContext context)
    {
        var request = context.Request;
        var header = request.Headers.Authorization.ToString();
        if (header.Length == 0 || !(Basic || Bearer))
        {
            return CertificatePrincipal is { } fromCertificate && context.Connection.ClientCertificate is { } certificate
                ? fromCertificate(certificate)
                : Anonymous;
        }
        var space = header.IndexOf(' ', StringComparison.Ordinal);
        var scheme = space < 0 ? header : header[..space];
        var credentials = space < 0 ? "" : header[(space + 1)..].Trim();
        if (Basic && scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(credentials));
            }
            catch (FormatException)
            {
                throw new InvalidCredentialsException("Unauthorized: malformed Basic credentials");
            }
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new InvalidCredentialsException("Unauthorized: malformed Basic credentials");
            return CheckPassword?.Invoke(decoded[..colon], decoded[(colon + 1)..]) ?? throw new InvalidCredentialsException("Unauthorized: invalid username or password");
        }
        if (Bearer && scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            if (credentials.Length == 0 || ValidateToken is null) throw new InvalidCredentialsException("Unauthorized: no bearer token");
            return ValidateToken(credentials);
        }
        throw new InvalidCredentialsException($"Unauthorized: the {scheme} scheme is not accepted here");
    }

    private Task ChallengeAsync(HttpContext context, string message)
    {
        var challenges = new List<string>();
        if (Basic) challenges.Add($"Basic realm=\"{Realm}\"");
        if (Bearer) challenges.Add($"Bearer realm=\"{Realm}\"");
        if (challenges.Count > 0) context.Response.Headers.WWWAuthenticate = challenges.ToArray();
        return RegistryJson.WriteErrorAsync(context, 401, 401, message);
    }
}
