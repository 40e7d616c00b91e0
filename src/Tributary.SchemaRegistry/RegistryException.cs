namespace Tributary.SchemaRegistry;

/// <summary>
/// A failure the REST API reports as Confluent does: an HTTP status and a body
/// <c>{"error_code":40401,"message":"..."}</c>. The error code's first three digits are the HTTP status.
/// </summary>
public sealed class RegistryException(int errorCode, string message) : Exception(message)
{
    public int ErrorCode { get; } = errorCode;

    public int HttpStatus => ErrorCode < 1000 ? ErrorCode : ErrorCode / 100;

    public static RegistryException SubjectNotFound(string subject) => new(40401, $"Subject '{subject}' not found.");
    public static RegistryException VersionNotFound(string subject, int version) => new(40402, $"Version {version} not found.");
    public static RegistryException VersionNotFound() => new(40402, "Version not found.");
    public static RegistryException SchemaNotFound() => new(40403, "Schema not found");
    public static RegistryException SchemaIdNotFound(int id) => new(40403, $"Schema {id} not found");
    public static RegistryException SubjectSoftDeleted(string subject) =>
        new(40404, $"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently");
    public static RegistryException SubjectNotSoftDeleted(string subject) =>
        new(40405, $"Subject '{subject}' was not deleted first before being permanently deleted");
    public static RegistryException VersionSoftDeleted(string subject, int version) =>
        new(40406, $"Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently");
    public static RegistryException VersionNotSoftDeleted(string subject, int version) =>
        new(40407, $"Subject '{subject}' Version {version} was not deleted first before being permanently deleted");
    public static RegistryException SubjectCompatibilityNotConfigured(string subject) =>
        new(40408, $"Subject '{subject}' does not have subject-level compatibility configured");
    public static RegistryException SubjectModeNotConfigured(string subject) =>
        new(40409, $"Subject '{subject}' does not have subject-level mode configured");
    public static RegistryException InvalidSchema(string detail) => new(42201, $"Invalid schema {detail}");
    public static RegistryException EmptySchema() => new(42201, "Empty schema");
    public static RegistryException InvalidSchemaType(string type) => new(42201, $"Invalid schema type {type}");
    public static RegistryException InvalidVersion(string version) =>
        new(42202, $"The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"");
    public static RegistryException InvalidCompatibilityLevel() =>
        new(42203, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive");
    public static RegistryException InvalidMode() => new(42204, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT and FORWARD.");
    public static RegistryException NotPermitted(string detail) => new(42205, detail);
    public static RegistryException ReadOnly(string subject) => new(42205, $"Subject {subject} in context . is in read-only mode");
    public static RegistryException IdDoesNotMatch(int registered, int input) =>
        new(42207, $"Schema already registered with id {registered} instead of input id {input}");
    public static RegistryException ReferenceExists(string detail) => new(42206, $"One or more references exist to the schema {detail}.");
    public static RegistryException InvalidSubject(string subject) => new(42208, $"The specified subject '{subject}' is not a valid.");
    public static RegistryException Incompatible(string detail) => new(409, detail);
    public static RegistryException Store(string detail) => new(50001, $"Error in the backend data store - {detail}");
    /// <summary>Confluent's 50002: an operation did not complete in time.</summary>
    public static RegistryException TimedOut(string detail) => new(50002, $"Operation timed out: {detail}");
    /// <summary>Confluent's 50003: a follower could not forward a request to the leader.</summary>
    public static RegistryException ForwardingFailed(string detail) => new(50003, detail);
    /// <summary>Confluent's 50004: no registry takes writes now (no leader of <c>_schemas</c>, or it is not reachable yet).</summary>
    public static RegistryException UnknownLeader() => new(50004, "Leader not known.");
    /// <summary>Confluent's 50002 (operation timed out): a check stopped at its work bound.</summary>
    public static RegistryException CheckTooLarge(string detail) => new(50002, $"Operation timed out: {detail}");
}
