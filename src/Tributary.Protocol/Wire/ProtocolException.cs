namespace Tributary.Protocol.Wire;

/// <summary>Input that does not follow the Kafka wire format. The connection that sent it is closed; the broker is unaffected.</summary>
public sealed class ProtocolException(string message) : Exception(message);
