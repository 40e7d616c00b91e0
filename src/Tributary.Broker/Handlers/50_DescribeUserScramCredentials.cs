using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeUserScramCredentials v0 (KIP-554): each user's SCRAM mechanisms and iterations, never a key. No users named
/// (null or empty) lists every user with a credential; a named user without one is RESOURCE_NOT_FOUND, a user named
/// twice DUPLICATE_RESOURCE, as Kafka answers. Needs DESCRIBE on the cluster.
/// </summary>
internal sealed class DescribeUserScramCredentialsHandler(BrokerState broker) : ApiHandler<DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse>
{
    public override ApiKey Key => ApiKey.DescribeUserScramCredentials;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    /// <summary>KIP-554's mechanism codes.</summary>
    internal static sbyte MechanismCode(string mechanism) => mechanism switch
    {
        SaslMechanisms.ScramSha256 => 1,
        SaslMechanisms.ScramSha512 => 2,
        _ => 0,
    };

    internal static string? MechanismName(sbyte code) => code switch
    {
        1 => SaslMechanisms.ScramSha256,
        2 => SaslMechanisms.ScramSha512,
        _ => null,
    };

    protected override ValueTask<DescribeUserScramCredentialsResponse?> HandleAsync(RequestContext context, DescribeUserScramCredentialsRequest request)
    {
        // Keyed "MECHANISM/user" in the image.
        var byUser = broker.Topics.Image.ScramCredentials
            .GroupBy(kv => kv.Key[(kv.Value.Mechanism.Length + 1)..], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(kv => kv.Value).ToList(), StringComparer.Ordinal);
        // Kafka: DESCRIBE on the cluster, else the whole request is CLUSTER_AUTHORIZATION_FAILED.
        if (!context.AllowsCluster(AclOperation.Describe))
            return new(new DescribeUserScramCredentialsResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." });
        var response = new DescribeUserScramCredentialsResponse();
        var named = request.Users is { Count: > 0 } users ? users.Select(u => u.Name).ToList() : [.. byUser.Keys.Order(StringComparer.Ordinal)];
        var duplicates = named.GroupBy(n => n, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var user in named.Distinct(StringComparer.Ordinal))
        {
            var result = new DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult { User = user };
            if (duplicates.Contains(user))
            {
                result.ErrorCode = (short)ErrorCode.DuplicateResource;
                result.ErrorMessage = $"Cannot describe SCRAM credentials for the same user twice in a single request: {user}";
            }
            else if (!byUser.TryGetValue(user, out var credentials))
            {
                result.ErrorCode = (short)ErrorCode.ResourceNotFound;
                result.ErrorMessage = $"Attempt to describe a user credential that does not exist: {user}";
            }
            else
            {
                result.CredentialInfos = [.. credentials.OrderBy(c => c.Mechanism, StringComparer.Ordinal).Select(c =>
                    new DescribeUserScramCredentialsResponse.CredentialInfo { Mechanism = MechanismCode(c.Mechanism), Iterations = c.Iterations })];
            }
            response.Results.Add(result);
        }
        return new(response);
    }
}
