using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ApiVersions v0-4: the versions of every API this broker serves, taken from the handler registry so it advertises
/// exactly what it implements. A request for a version we do not know is answered in the v0 shape with
/// UNSUPPORTED_VERSION and our ranges (KIP-511), so newer clients can retry with one we serve.
/// </summary>
internal sealed class ApiVersionsHandler(Func<ApiRegistry> registry, short transactionVersion = 2) : ApiHandler<ApiVersionsRequest, ApiVersionsResponse>
{
    public override ApiKey Key => ApiKey.ApiVersions;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override ValueTask<ApiVersionsResponse?> HandleAsync(RequestContext context, ApiVersionsRequest request) =>
        new(Build(ErrorCode.None));

    public ApiVersionsResponse UnsupportedVersionResponse() => Build(ErrorCode.UnsupportedVersion);

    private ApiVersionsResponse Build(ErrorCode error) => new()
    {
        ErrorCode = (short)error,
        ApiKeys = registry().All
            .Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.Key, MinVersion = h.MinVersion, MaxVersion = h.MaxVersion })
            .ToList(),
        // Features (KIP-584; v3+): transaction.version 0-2 is supported and the configured level finalized, which is how
        // clients learn they may use KIP-890 part 2. A single level: the epoch is fixed.
        SupportedFeatures = [new ApiVersionsResponse.SupportedFeatureKey { Name = TransactionVersionFeature, MinVersion = 0, MaxVersion = 2 }],
        FinalizedFeaturesEpoch = transactionVersion > 0 ? 1 : -1,
        FinalizedFeatures = transactionVersion > 0
            ? [new ApiVersionsResponse.FinalizedFeatureKey { Name = TransactionVersionFeature, MinVersionLevel = transactionVersion, MaxVersionLevel = transactionVersion }]
            : [],
    };

    private const string TransactionVersionFeature = "transaction.version";
}
