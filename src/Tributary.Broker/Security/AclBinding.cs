namespace Tributary.Broker.Security;

/// <summary>Kafka's ResourceType, with its wire codes.</summary>
public enum AclResourceType : sbyte
{
    Unknown = 0,
    Any = 1,
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

/// <summary>Kafka's PatternType: LITERAL and PREFIXED are stored; ANY and MATCH only filter.</summary>
public enum AclPatternType : sbyte
{
    Unknown = 0,
    Any = 1,
    Match = 2,
    Literal = 3,
    Prefixed = 4,
}

/// <summary>Kafka's AclOperation, with its wire codes (the bit a resource's authorized-operations field sets).</summary>
public enum AclOperation : sbyte
{
    Unknown = 0,
    Any = 1,
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

/// <summary>Kafka's AclPermissionType.</summary>
public enum AclPermission : sbyte
{
    Unknown = 0,
    Any = 1,
    Deny = 2,
    Allow = 3,
}

/// <summary>
/// One ACL, Kafka's AclBinding: a resource pattern (type, name, LITERAL or PREFIXED) and an entry (principal, host,
/// operation, ALLOW or DENY). Value equality: creating the same binding twice stores it once.
/// </summary>
public sealed record AclBinding(AclResourceType ResourceType, string ResourceName, AclPatternType PatternType, string Principal, string Host,
    AclOperation Operation, AclPermission Permission)
{
    /// <summary>The one name a CLUSTER resource has.</summary>
    public const string ClusterName = "kafka-cluster";

    /// <summary>The literal resource name and host that match every name or host.</summary>
    public const string Wildcard = "*";

    /// <summary>The principal that matches every principal.</summary>
    public const string WildcardPrincipal = "User:*";

    /// <summary>
    /// Kafka's checks of a binding to create, in its order (AclApis.handleCreateAcls, then the controller's
    /// AclControlManager.validateNewAcl); null when it may be stored, else the INVALID_REQUEST message. Like Kafka's
    /// broker, it accepts any operation on any resource type (TOPIC with CREATE_TOKENS is stored and never matches a
    /// check); kafka-acls, and <c>tributary acl create</c>, refuse an operation the type does not support.
    /// </summary>
    public string? Invalid()
    {
        if (ResourceType == AclResourceType.Cluster && ResourceName != ClusterName) return "The only valid name for the CLUSTER resource is " + ClusterName;
        if (string.IsNullOrEmpty(ResourceName)) return "Invalid empty resource name";
        if (ResourceType is AclResourceType.Unknown or AclResourceType.Any || !Enum.IsDefined(ResourceType)) return "Invalid resourceType " + KafkaName(ResourceType);
        if (PatternType is not (AclPatternType.Literal or AclPatternType.Prefixed)) return "Invalid patternType " + KafkaName(PatternType);
        if (Operation is AclOperation.Unknown or AclOperation.Any || !Enum.IsDefined(Operation)) return "Invalid operation " + KafkaName(Operation);
        if (Permission is not (AclPermission.Allow or AclPermission.Deny)) return "Invalid permissionType " + KafkaName(Permission);
        var colon = Principal.IndexOf(':');
        if (colon <= 0) return $"Could not parse principal from `{Principal}` (no colon is present separating the principal type from the principal name)";
        if (Host is null) return "Invalid null host";
        return null;
    }

    /// <summary>Kafka's name of a code, UNKNOWN for a code it does not define (its fromCode does the same).</summary>
    private static string KafkaName<T>(T value) where T : struct, Enum => Enum.IsDefined(value) ? Names.Upper(value.ToString()) : "UNKNOWN";

    /// <summary>The canonical text of a binding, for logs and the CLI (kafka-acls prints it much like this).</summary>
    public override string ToString() =>
        $"(resourceType={Names.Of(ResourceType)}, name={ResourceName}, patternType={Names.Of(PatternType)}, principal={Principal}, host={Host}, " +
        $"operation={Names.Of(Operation)}, permissionType={Names.Of(Permission)})";

    /// <summary>Kafka's upper-case names of the ACL enums (TRANSACTIONAL_ID, CLUSTER_ACTION, ...).</summary>
    public static class Names
    {
        public static string Of(AclResourceType value) => Upper(value.ToString());
        public static string Of(AclPatternType value) => Upper(value.ToString());
        public static string Of(AclOperation value) => Upper(value.ToString());
        public static string Of(AclPermission value) => Upper(value.ToString());

        /// <summary>Parses a name as Kafka spells it (TRANSACTIONAL_ID, transactional-id or TransactionalId).</summary>
        public static bool TryParse<T>(string text, out T value) where T : struct, Enum =>
            Enum.TryParse(text.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out value)
            && Enum.IsDefined(value);

        internal static string Upper(string pascal)
        {
            var chars = new System.Text.StringBuilder(pascal.Length + 4);
            for (var i = 0; i < pascal.Length; i++)
            {
                if (i > 0 && char.IsUpper(pascal[i])) chars.Append('_');
                chars.Append(char.ToUpperInvariant(pascal[i]));
            }
            return chars.ToString();
        }
    }
}

/// <summary>
/// Kafka's AclBindingFilter (DescribeAcls, DeleteAcls): null name, principal or host match any; ANY matches any type,
/// pattern, operation or permission; the MATCH pattern type matches the bindings that would apply to the named
/// resource (the literal name, the literal wildcard, and every prefix of it).
/// </summary>
public sealed record AclBindingFilter(AclResourceType ResourceType, string? ResourceName, AclPatternType PatternType, string? Principal, string? Host,
    AclOperation Operation, AclPermission Permission)
{
    /// <summary>Why Kafka would refuse this filter (unknown values), or null.</summary>
    public string? Invalid()
    {
        if (ResourceType == AclResourceType.Unknown || !Enum.IsDefined(ResourceType)) return "Invalid resourceType filter";
        if (PatternType == AclPatternType.Unknown || !Enum.IsDefined(PatternType)) return "Invalid patternType filter";
        if (Operation == AclOperation.Unknown || !Enum.IsDefined(Operation)) return "Invalid operation filter";
        if (Permission == AclPermission.Unknown || !Enum.IsDefined(Permission)) return "Invalid permissionType filter";
        return null;
    }

    public bool Matches(AclBinding acl)
    {
        if (ResourceType != AclResourceType.Any && ResourceType != acl.ResourceType) return false;
        if (PatternType is not (AclPatternType.Any or AclPatternType.Match) && PatternType != acl.PatternType) return false;
        if (ResourceName is not null)
        {
            var nameMatches = PatternType == AclPatternType.Match
                ? acl.PatternType == AclPatternType.Literal
                    ? acl.ResourceName == ResourceName || acl.ResourceName == AclBinding.Wildcard
                    : ResourceName.StartsWith(acl.ResourceName, StringComparison.Ordinal)
                : acl.ResourceName == ResourceName;
            if (!nameMatches) return false;
        }
        if (Principal is not null && Principal != acl.Principal) return false;
        if (Host is not null && Host != acl.Host) return false;
        if (Operation != AclOperation.Any && Operation != acl.Operation) return false;
        if (Permission != AclPermission.Any && Permission != acl.Permission) return false;
        return true;
    }
}
