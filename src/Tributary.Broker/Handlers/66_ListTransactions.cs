using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>ListTransactions v0-1: every transactional id, filtered by state names, producer ids and (v1) by having run longer than a duration.</summary>
internal sealed class ListTransactionsHandler(TransactionCoordinator transactions, TimeProvider time) : ApiHandler<ListTransactionsRequest, ListTransactionsResponse>
{
    public override ApiKey Key => ApiKey.ListTransactions;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override async ValueTask<ListTransactionsResponse?> HandleAsync(RequestContext context, ListTransactionsRequest request)
    {
        var response = new ListTransactionsResponse();
        var states = new HashSet<TransactionState>();
        foreach (var name in request.StateFilters)
        {
            // Only the exact names: Enum.TryParse would also take "1" or "Ongoing,Empty".
            if (Array.IndexOf(Enum.GetNames<TransactionState>(), name) >= 0) states.Add(Enum.Parse<TransactionState>(name));
            else response.UnknownStateFilters.Add(name);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var d in await transactions.DescribeAsync(null).ConfigureAwait(false))
        {
            if (request.StateFilters.Count > 0 && !states.Contains(d.State)) continue;
            if (!context.AllowsTransactionalId(AclOperation.Describe, d.TransactionalId)) continue;
            if (request.ProducerIdFilters.Count > 0 && !request.ProducerIdFilters.Contains(d.ProducerId)) continue;
            if (request.DurationFilter >= 0 && (d.StartTimeMs < 0 || now - d.StartTimeMs <= request.DurationFilter)) continue;
            response.TransactionStates.Add(new ListTransactionsResponse.TransactionStateData { TransactionalId = d.TransactionalId, ProducerId = d.ProducerId, TransactionState = d.State.ToString() });
        }
        return response;
    }
}
