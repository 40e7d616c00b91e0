using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AlterUserScramCredentials v0 (KIP-554): upserts and deletes SCRAM credentials in the cluster metadata, one result per
/// user. The client sends the salted password; only the StoredKey and ServerKey derived from it are kept. Kafka's checks:
/// an empty name or salt, or iterations outside 4096..16384, are UNACCEPTABLE_CREDENTIAL; an unknown mechanism
/// UNSUPPORTED_SASL_MECHANISM; a user with the same mechanism twice in the request DUPLICATE_RESOURCE; deleting a
/// credential that does not exist RESOURCE_NOT_FOUND. A user with any error has none of its changes applied. Needs ALTER
/// on the cluster.
/// </summary>
internal sealed class AlterUserScramCredentialsHandler(BrokerState broker) : ApiHandler<AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse>
{
    public override ApiKey Key => ApiKey.AlterUserScramCredentials;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<AlterUserScramCredentialsResponse?> HandleAsync(RequestContext context, AlterUserScramCredentialsRequest request)
    {
        // Kafka: ALTER on the cluster, else every user's result is CLUSTER_AUTHORIZATION_FAILED.
        if (!context.AllowsCluster(AclOperation.Alter))
        {
            var refused = new AlterUserScramCredentialsResponse();
            foreach (var user in request.Deletions.Select(d => d.Name).Concat(request.Upsertions.Select(u => u.Name)).Distinct(StringComparer.Ordinal))
                refused.Results.Add(new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult
                {
                    User = user,
                    ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed,
                    ErrorMessage = "Cluster authorization failed.",
                });
            return refused;
        }
        var image = broker.Topics.Image;
        var errors = new Dictionary<string, (ErrorCode Error, string Message)>(StringComparer.Ordinal);
        var changes = new List<(string User, string Mechanism, ScramCredential? Credential)>();
        var users = new List<string>();
        void Refuse(string user, ErrorCode error, string message) => errors.TryAdd(user, (error, message));

        var seen = request.Deletions.Select(d => (d.Name, d.Mechanism)).Concat(request.Upsertions.Select(u => (u.Name, u.Mechanism)))
            .GroupBy(x => x).Where(g => g.Count() > 1).Select(g => g.Key.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var user in seen) Refuse(user, ErrorCode.DuplicateResource, $"A user credential cannot be altered twice in the same request: {user}");

        foreach (var deletion in request.Deletions)
        {
            if (!users.Contains(deletion.Name)) users.Add(deletion.Name);
            var mechanism = DescribeUserScramCredentialsHandler.MechanismName(deletion.Mechanism);
            if (deletion.Name.Length == 0) Refuse(deletion.Name, ErrorCode.UnacceptableCredential, "Username must not be empty");
            else if (mechanism is null) Refuse(deletion.Name, ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism");
            else if (image.ScramCredential(deletion.Name, mechanism) is null)
                Refuse(deletion.Name, ErrorCode.ResourceNotFound, $"Attempt to delete a user credential that does not exist: {deletion.Name}");
            else changes.Add((deletion.Name, mechanism, null));
        }
        foreach (var upsertion in request.Upsertions)
        {
            if (!users.Contains(upsertion.Name)) users.Add(upsertion.Name);
            var mechanism = DescribeUserScramCredentialsHandler.MechanismName(upsertion.Mechanism);
            if (upsertion.Name.Length == 0) Refuse(upsertion.Name, ErrorCode.UnacceptableCredential, "Username must not be empty");
            else if (mechanism is null) Refuse(upsertion.Name, ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism");
            else if (upsertion.Iterations < ScramCredential.MinIterations)
                Refuse(upsertion.Name, ErrorCode.UnacceptableCredential, $"Too few iterations (minimum {ScramCredential.MinIterations})");
            else if (upsertion.Iterations > ScramCredential.MaxIterations)
                Refuse(upsertion.Name, ErrorCode.UnacceptableCredential, $"Too many iterations (maximum {ScramCredential.MaxIterations})");
            else if (upsertion.Salt.Length == 0 || upsertion.SaltedPassword.Length == 0)
                Refuse(upsertion.Name, ErrorCode.UnacceptableCredential, "Salt and salted password must not be empty");
            else
                changes.Add((upsertion.Name, mechanism, ScramCredential.FromSaltedPassword(mechanism, upsertion.Salt, upsertion.Iterations, upsertion.SaltedPassword)));
        }
        var apply = changes.Where(c => !errors.ContainsKey(c.User)).ToList();
        if (apply.Count > 0) await broker.Topics.Store.UpdateScramCredentialsAsync(apply, context.Cancellation).ConfigureAwait(false);
        var response = new AlterUserScramCredentialsResponse();
        foreach (var user in users)
        {
            var result = new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult { User = user };
            if (errors.TryGetValue(user, out var error))
            {
                result.ErrorCode = (short)error.Error;
                result.ErrorMessage = error.Message;
            }
            response.Results.Add(result);
        }
        return response;
    }
}
